"""Streamlit helpers shared by the pages (session-state keys, connections, cached resources)."""
