"""LLM providers: httpx streaming clients behind one protocol (see base.py)."""
