"""chatplex: a terminal multiplexer for LLM chats."""

__version__ = "0.1.0"
