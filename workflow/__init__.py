"""The workflow layer: analysis combined with storage (ingest, analyse stored studies,
patient loading, report assembly, the speed benchmark). Imports core and db; never ui."""
