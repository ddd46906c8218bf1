"""Settings from config.toml and the environment; file locations from platformdirs.

Keys never live in the file: a provider names the environment variable that holds its key.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from chatplex.providers.anthropic import AnthropicProvider
from chatplex.providers.base import Provider
from chatplex.providers.llamacpp import LlamaCppProvider
from chatplex.providers.openai import REPLAY_REASONING, OpenAIProvider
from chatplex.tools.policy import Decision
from chatplex.tools.results import RESULT_LIMIT
from chatplex.tools.spec import McpServerConfig

APP = "chatplex"

# kind -> (wire protocol, default base_url, default key variable)
KINDS: dict[str, tuple[str, str, str | None]] = {
    "openai": ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "ollama": ("openai", "http://localhost:11434/v1", None),
    "vllm": ("openai", "http://localhost:8000/v1", None),
    "llamacpp-server": ("openai", "http://localhost:8080/v1", None),
    "lmstudio": ("openai", "http://localhost:1234/v1", None),
    "openrouter": ("openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "anthropic": ("anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
    "llamacpp": ("llamacpp", "", None),
}


# kinds whose server continues a final assistant message (Anthropic: prefill; llama.cpp's
# server; vLLM with continue_final_message). Others regenerate unless `resume = "continue"`.
RESUME_DEFAULTS = {"anthropic": "continue", "llamacpp": "continue", "llamacpp-server": "continue", "vllm": "continue"}
# Every key load() reads (`get` checks it asks for no other). [keys] and
# [providers.NAME.params] are free-form; any other key is reported, not ignored in silence.
TOP_KEYS = (
    "default_provider",
    "workers",
    "max_attempts",
    "bell",
    "notifications",
    "show_reasoning",
    "show_times",
    "database",
    "providers",
    "keys",
    "prices",
    "mcp",
    "max_tool_rounds",
    "tool_result_limit",
)
# [mcp.NAME]: a stdio server (command, args, env, cwd) or a streamable-HTTP one (url, headers)
MCP_KEYS = (
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "enabled",
    "timeout",
    "approval",
    "tools",
    "max_parallel",
)
PROVIDER_KEYS = (
    "kind",
    "base_url",
    "model",
    "api_key_env",
    "max_concurrency",
    "connect_timeout",
    "read_timeout",
    "stall_timeout",
    "reply_timeout",
    "resume",
    "max_tokens",
    "model_path",
    "context",
    "context_window",
    "think_tags",
    "replay_reasoning",
    "reasoning_effort",
    "thinking",
    "params",
)
# request body fields people put in a provider table by mistake: they belong in its params
REQUEST_PARAMS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "repeat_penalty",
    "repetition_penalty",
    "seed",
    "stop",
    "stop_sequences",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "n",
    "response_format",
    "max_completion_tokens",
    "tool_choice",
    "parallel_tool_calls",
    "service_tier",
)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


@dataclass(slots=True)
class ProviderConfig:
    name: str
    kind: str = "openai"
    base_url: str = ""
    model: str = ""
    api_key_env: str | None = None
    max_concurrency: int = 0  # 0: no limit beyond the worker count
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    stall_timeout: float = 120.0  # no new text or reasoning for this long: a transient failure
    reply_timeout: float = 3600.0  # one reply may not stream longer than this
    # an interrupted reply (quit, crash, preemption, a dropped stream): "continue" sends its
    # partial text as the final assistant turn and appends what the model adds; "regenerate"
    # starts it over (for APIs that cannot continue a message, like OpenAI's own)
    resume: str = ""  # "" = the kind's default (RESUME_DEFAULTS)
    max_tokens: int | None = None
    model_path: str = ""  # kind = "llamacpp"
    context: int = 4096  # kind = "llamacpp"
    # the model's context window in tokens, for the status bar's "context 45% of 32k"; 0: ask
    # the server (llama.cpp's /props, a /models entry that says) — kind llamacpp: `context`
    context_window: int = 0
    params: dict[str, Any] = field(default_factory=dict)  # extra request body fields
    think_tags: bool = False  # OpenAI-compatible: <think>…</think> inside content is reasoning
    # which earlier assistant turns send their reasoning back (OpenAI-compatible):
    # "tool_turns" (DeepSeek's rule), "always" or "never"
    replay_reasoning: str = "tool_turns"
    reasoning_effort: str = ""  # the default for sessions that set none ("low", "medium", "high", "off")
    thinking: dict[str, Any] = field(default_factory=dict)  # Anthropic's `thinking`, sent as it is

    def __post_init__(self) -> None:
        self.resume = self.resume or RESUME_DEFAULTS.get(self.kind, "regenerate")

    @property
    def protocol(self) -> str:
        return KINDS[self.kind][0]


@dataclass(frozen=True, slots=True)
class Price:
    """[prices."MODEL"]: dollars per million tokens (core/usage.py)."""

    input: float  # prompt tokens
    output: float  # completion tokens, thinking included


@dataclass(slots=True)
class Config:
    path: Path | None
    db_path: Path
    log_dir: Path
    providers: dict[str, ProviderConfig]
    default_provider: str
    workers: int = 4
    max_attempts: int = 5
    bell: bool = False
    # desktop notifications while the terminal is not focused: "auto", "off" or a way by name
    # (tui/notify.py: osc777, osc9, osc99, notify-send, osascript)
    notifications: str = "auto"
    show_reasoning: bool = False  # every reply's thinking shown open, not folded to one line
    show_times: bool = False  # each message's time on its box (the palette flips it)
    keys: dict[str, str] = field(default_factory=dict)
    prices: dict[str, Price] = field(default_factory=dict)  # by model name (or its start)
    mcp: dict[str, McpServerConfig] = field(default_factory=dict)
    max_tool_rounds: int = 20  # model steps that call tools in one turn, then the session waits
    tool_result_limit: int = RESULT_LIMIT  # characters of one tool result a model gets
    # one line each (file, line, key, a suggestion) about keys the file has but nothing reads
    warnings: list[str] = field(default_factory=list)

    def provider(self, name: str) -> ProviderConfig:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none"
            raise ConfigError(f"unknown provider {name!r} (configured: {known})") from None

    def make_provider(self, name: str) -> Provider:
        """Build the client. A key variable that is missing, or holds something that cannot go
        in an HTTP header, surfaces as an AuthError on first use (nothing is sent): the
        session shows why, and the other providers keep working."""
        pc = self.provider(name)
        if pc.protocol == "llamacpp":
            return LlamaCppProvider(
                name,
                pc.model_path,
                context=pc.context,
                read_timeout=pc.read_timeout,
                default_max_tokens=pc.max_tokens,
                params=pc.params,
                options={
                    "think_tags": pc.think_tags,
                    "replay_reasoning": pc.replay_reasoning,
                    "reasoning_effort": pc.reasoning_effort,
                },
            )
        key, problem = api_key(pc.api_key_env)
        common: dict[str, Any] = {
            "api_key": key,
            "key_error": problem and f"{name}: {problem}",
            "key_env": pc.api_key_env,
            "connect_timeout": pc.connect_timeout,
            "read_timeout": pc.read_timeout,
            "default_max_tokens": pc.max_tokens,
            "params": pc.params,
            "reasoning_effort": pc.reasoning_effort,
        }
        if pc.protocol == "anthropic":
            return AnthropicProvider(name, pc.base_url, thinking=pc.thinking, **common)
        return OpenAIProvider(
            name, pc.base_url, think_tags=pc.think_tags, replay_reasoning=pc.replay_reasoning, **common
        )

    def default_servers(self) -> list[str]:
        """The MCP servers a session uses unless it chose its own: those not `enabled = false`."""
        return [name for name, server in self.mcp.items() if server.enabled]

    def secrets(self) -> list[str]:
        """Every configured key variable's value that is set, as found and as sent (stripped):
        what logs and stored errors must never show."""
        found: list[str] = []
        for pc in self.providers.values():
            raw = os.environ.get(pc.api_key_env) if pc.api_key_env else None
            for value in (raw, raw and raw.strip(_HEADER_SPACE)):
                if value and value not in found:
                    found.append(value)
        for server in self.mcp.values():  # ${VAR} values in [mcp.NAME] env and headers
            found += [v for v in server.secrets() if v not in found]
        return found


_HEADER_SPACE = " \t\r\n\f\v"  # ASCII whitespace: a CRLF .env file leaves "\r" at the end


def api_key(env: str | None) -> tuple[str | None, str | None]:
    """The key in variable `env` as ``(key, None)``, or ``(None, problem)``: one line that
    names the variable and what is wrong, never the value. Surrounding ASCII whitespace is
    dropped; anything else that cannot go in an HTTP header is refused rather than sent
    (httpx's error would quote the whole header, key included)."""
    if not env:
        return None, None
    key = os.environ.get(env, "").strip(_HEADER_SPACE)
    if not key:
        return None, f"the environment variable {env} is not set (it should hold the API key)"
    for i, ch in enumerate(key, 1):
        if "!" <= ch <= "~":
            continue
        if ch in _HEADER_SPACE:
            what = "whitespace (a space, tab or line break) inside it"
        elif ch.isascii():
            what = "a control character"
        else:
            what = f"a non-ASCII character (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})"
        return None, (
            f"the environment variable {env} holds {what} at character {i} of "
            f"{len(key)}, which an API key cannot contain; set it again without it"
        )
    return key, None


def url_problem(url: str) -> str | None:
    """Why `url` can never reach a server (so it is refused at load, not retried later as
    a network error), or None."""
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "contains a space or a control character"
    if "://" not in url:
        return "has no scheme: it should start with http:// or https://"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as e:
        return f"is not a valid URL ({e})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"uses {parts.scheme}://, but only http:// and https:// can work"
    if not parts.hostname:
        return "has no host name"
    return None


_BARE = r"[A-Za-z0-9_-]+"
_PART = rf"""(?:{_BARE}|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?")
_ENTRY = re.compile(rf"\s*({_DOTTED})\s*=")


def _key_path(dotted: str) -> tuple[str, ...] | None:
    """A dotted TOML key as its parts, unquoted and unescaped by tomllib itself."""
    try:
        node: Any = tomllib.loads(f"{dotted} = 0")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(node, dict):
        ((key, node),) = node.items()
        path.append(key)
    return tuple(path)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line where each key path (("providers", "x", "model"), …) of a config file's text
    first appears, from table headers and `key =` lines, for messages about values TOML
    accepted. Keys inside inline tables are not found; the lines of multi-line strings are
    skipped, so text in a system prompt cannot pass for a key."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    closing = ""  # the delimiter of the multi-line string being skipped
    for n, line in enumerate(text.splitlines(), 1):
        if closing:
            if line.count(closing) % 2:
                closing = ""
            continue
        if (m := _HEADER.fullmatch(line)) and (path := _key_path(m[1])) is not None:
            table = path
        elif (m := _ENTRY.match(line)) and (path := _key_path(m[1])) is not None:
            path = table + path
            value = line[m.end() :]
            closing = next((d for d in ('"""', "'''") if value.count(d) % 2), "")
        else:
            continue
        for i in range(1, len(path) + 1):
            lines.setdefault(path[:i], n)
    return lines


def key_line(text: str, provider: str, key: str) -> int | None:
    """The line of `key` in the table [providers.<provider>] of a config file's text, or None
    where it cannot be found that way."""
    return key_lines(text).get(("providers", provider, key))


def _table(*path: str) -> str:
    return ".".join(p if re.fullmatch(_BARE, p) else json.dumps(p, ensure_ascii=False) for p in path)


# the ways of `notifications` (how each works: tui/notify.py)
NOTIFY_CHOICES = ("auto", "off", "osc777", "osc9", "osc99", "notify-send", "osascript")


def notifications_of(value: object, where: str) -> str:
    """config's `notifications`: true means "auto", false "off"."""
    if isinstance(value, bool):
        return "auto" if value else "off"
    if not isinstance(value, str) or value not in NOTIFY_CHOICES:
        choices = ", ".join(NOTIFY_CHOICES)
        raise ConfigError(f"{where}: notifications must be one of {choices} (or true/false), got {value!r}")
    return value


def prices_of(raw: object, where: str) -> dict[str, Price]:
    """[prices."MODEL"] tables: input and output, dollars per million tokens."""
    if not isinstance(raw, dict):
        raise ConfigError(f'{where}: [prices] must be a table of [prices."MODEL"] tables')
    prices = {}
    for model, table in raw.items():
        ctx = f'prices."{model}"'
        if not isinstance(table, dict) or set(table) - {"input", "output"}:
            raise ConfigError(f"{where}: [{ctx}] takes input and output, dollars per million tokens")
        got = [table.get(k, 0) for k in ("input", "output")]
        if any(isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1e6 for v in got):
            raise ConfigError(f"{where}: [{ctx}] input and output must be dollars per million tokens, got {table}")
        prices[model] = Price(float(got[0]), float(got[1]))
    return prices


def unknown_keys(data: dict[str, Any], text: str, where: str) -> list[str]:
    """A warning per key that nothing reads (a typo, or a request parameter outside its
    params table), with its line and the closest known key: otherwise the setting is
    silently not applied and the user never learns why."""
    lines = key_lines(text)
    warnings: list[str] = []

    def warn(path: tuple[str, ...], hint: str) -> None:
        line = lines.get(path) or (lines.get(path[:-1]) if len(path) > 1 else None)
        inside = f" in [{_table(*path[:-1])}]" if len(path) > 1 else ""
        warnings.append(
            f"{where}{f', line {line}' if line else ''}: unknown key "
            f"{json.dumps(path[-1], ensure_ascii=False)}{inside}{hint}"
        )

    def close(key: str, known: tuple[str, ...]) -> str | None:
        return next(iter(difflib.get_close_matches(key, known, n=1)), None)

    for key in data:
        if key in TOP_KEYS:
            continue
        if key in PROVIDER_KEYS:
            warn((key,), " (it belongs in a [providers.NAME] table)")
        elif key in REQUEST_PARAMS:
            warn((key,), " (a request parameter: it belongs in [providers.NAME.params])")
        else:
            match = close(key, TOP_KEYS)
            warn((key,), f' (did you mean "{match}"?)' if match else "")
    for name, table in (data.get("mcp") or {}).items():
        for key in table if isinstance(table, dict) else ():
            if key not in MCP_KEYS:
                match = close(key, MCP_KEYS)
                warn(("mcp", name, key), f' (did you mean "{match}"?)' if match else "")
    for name, table in data.get("providers", {}).items():
        params = _table("providers", name, "params")
        for key in table:
            if key in PROVIDER_KEYS:
                continue
            if key in REQUEST_PARAMS:
                warn(("providers", name, key), f" (a request parameter: it belongs in [{params}])")
            elif match := close(key, PROVIDER_KEYS):
                warn(("providers", name, key), f' (did you mean "{match}"?)')
            elif match := close(key, REQUEST_PARAMS):
                warn(("providers", name, key), f' (did you mean "{match}" in [{params}]?)')
            else:
                warn(("providers", name, key), "")
    return warnings


def config_path() -> Path:
    env = os.environ.get("CHATPLEX_CONFIG")
    return Path(env).expanduser() if env else Path(platformdirs.user_config_dir(APP)) / "config.toml"


def default_db_path() -> Path:
    env = os.environ.get("CHATPLEX_DB")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP)) / "chatplex.db"


def default_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP))


def load(path: Path | None = None, db: Path | str | None = None) -> Config:
    """Read config.toml (or use the built-in local Ollama default when there is none)."""
    path = path or config_path()
    data: dict[str, Any] = {}
    where, text = str(path), ""
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{where}: {e}") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{where}: cannot read: {e}") from e
    else:
        path = None

    def get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any, ctx: str) -> Any:
        assert key in (PROVIDER_KEYS if ctx else TOP_KEYS), f"add {key!r} to the known keys"
        value = table.get(key, default)
        if value is not default and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(f"{where}: {ctx}{key} must be {names}, got {value!r}")
        return value

    providers: dict[str, ProviderConfig] = {}
    raw = data.get("providers", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [providers] must be a table of tables")
    for name, table in raw.items():
        ctx = f"providers.{name}."
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [providers.{name}] must be a table")
        kind = get(table, "kind", str, "openai", ctx)
        if kind not in KINDS:
            raise ConfigError(f"{where}: {ctx}kind must be one of {', '.join(KINDS)}, got {kind!r}")
        _, base_default, key_default = KINDS[kind]
        pc = ProviderConfig(
            name=name,
            kind=kind,
            base_url=get(table, "base_url", str, base_default, ctx),
            model=get(table, "model", str, "", ctx),
            api_key_env=get(table, "api_key_env", str, key_default, ctx) or None,
            max_concurrency=get(table, "max_concurrency", int, 0, ctx),
            connect_timeout=float(get(table, "connect_timeout", (int, float), 10.0, ctx)),
            read_timeout=float(get(table, "read_timeout", (int, float), 120.0, ctx)),
            stall_timeout=float(get(table, "stall_timeout", (int, float), 120.0, ctx)),
            reply_timeout=float(get(table, "reply_timeout", (int, float), 3600.0, ctx)),
            resume=get(table, "resume", str, "", ctx),
            max_tokens=get(table, "max_tokens", int, None, ctx),
            model_path=get(table, "model_path", str, "", ctx),
            context=get(table, "context", int, 4096, ctx),
            context_window=get(table, "context_window", int, 0, ctx),
            think_tags=get(table, "think_tags", bool, False, ctx),
            replay_reasoning=get(table, "replay_reasoning", str, "tool_turns", ctx),
            reasoning_effort=get(table, "reasoning_effort", str, "", ctx),
            thinking=dict(get(table, "thinking", dict, {}, ctx)),
            params=dict(get(table, "params", dict, {}, ctx)),
        )
        if kind != "llamacpp" and (reason := url_problem(pc.base_url)):
            line = key_line(text, name, "base_url")
            raise ConfigError(f"{where}{f', line {line}' if line else ''}: {ctx}base_url {reason}")
        if kind == "llamacpp":
            if not pc.model_path:
                raise ConfigError(f'{where}: {ctx}model_path is required for kind = "llamacpp"')
            pc.model = pc.model or Path(pc.model_path).stem
            pc.max_concurrency = pc.max_concurrency or 2
        elif not pc.model:
            raise ConfigError(f"{where}: {ctx}model is required")
        if pc.replay_reasoning not in REPLAY_REASONING:
            choices = ", ".join(f'"{c}"' for c in REPLAY_REASONING)
            raise ConfigError(f"{where}: {ctx}replay_reasoning must be one of {choices}, got {pc.replay_reasoning!r}")
        if pc.resume not in ("continue", "regenerate"):
            raise ConfigError(f'{where}: {ctx}resume must be "continue" or "regenerate", got {pc.resume!r}')
        for key in ("connect_timeout", "read_timeout", "stall_timeout", "reply_timeout"):
            if not getattr(pc, key) > 0:
                raise ConfigError(f"{where}: {ctx}{key} must be a number of seconds above 0")
        if pc.max_concurrency < 0:
            raise ConfigError(f"{where}: {ctx}max_concurrency must be 0 (no limit) or more")
        providers[name] = pc
    if not providers:
        providers["ollama"] = ProviderConfig(
            name="ollama", kind="ollama", base_url=KINDS["ollama"][1], model="llama3.2", max_concurrency=1
        )
    default = get(data, "default_provider", str, next(iter(providers)), "")
    if default not in providers:
        raise ConfigError(f"{where}: default_provider {default!r} is not among the providers ({', '.join(providers)})")
    workers = get(data, "workers", int, 4, "")
    if not 1 <= workers <= 64:
        raise ConfigError(f"{where}: workers must be between 1 and 64, got {workers}")
    keys = get(data, "keys", dict, {}, "")
    for k, v in keys.items():
        if not isinstance(v, str):
            raise ConfigError(f"{where}: keys.{k} must be a key name string, got {v!r}")
    rounds = get(data, "max_tool_rounds", int, 20, "")
    if rounds < 1:
        raise ConfigError(f"{where}: max_tool_rounds must be 1 or more, got {rounds}")
    limit = get(data, "tool_result_limit", int, RESULT_LIMIT, "")
    if limit < 1000:
        raise ConfigError(f"{where}: tool_result_limit must be at least 1000 characters, got {limit}")
    return Config(
        path=path,
        db_path=Path(db).expanduser()
        if db
        else Path(get(data, "database", str, str(default_db_path()), "")).expanduser(),
        log_dir=default_log_dir(),
        providers=providers,
        default_provider=default,
        workers=workers,
        max_attempts=get(data, "max_attempts", int, 5, ""),
        bell=get(data, "bell", bool, False, ""),
        notifications=notifications_of(data.get("notifications", "auto"), where),
        show_reasoning=get(data, "show_reasoning", bool, False, ""),
        show_times=get(data, "show_times", bool, False, ""),
        keys=dict(keys),
        prices=prices_of(data.get("prices", {}), where),
        mcp=mcp_servers(data.get("mcp", {}), where),
        max_tool_rounds=rounds,
        tool_result_limit=limit,
        warnings=unknown_keys(data, text, where),
    )


def mcp_servers(raw: Any, where: str) -> dict[str, McpServerConfig]:
    """[mcp.NAME] tables, checked: one of command or url, strings where strings go, and
    approval rules that say ask, allow or deny."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [mcp] must be a table of tables")
    return {name: _mcp_server(name, table, where) for name, table in raw.items()}


def _mcp_server(name: str, table: Any, where: str) -> McpServerConfig:
    ctx = f"mcp.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{ctx}] must be a table")

    def typed(key: str, kind: type, default: Any) -> Any:
        value = table.get(key, default)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise ConfigError(f"{where}: {ctx}.{key} must be {kind.__name__}, got {value!r}")
        return value

    def strings(key: str) -> dict[str, str]:
        value = typed(key, dict, {})
        if not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f'{where}: {ctx}.{key} values must be strings (secrets as "${{VAR}}")')
        return dict(value)

    command, url = typed("command", str, ""), typed("url", str, "")
    if bool(command) == bool(url):
        raise ConfigError(f"{where}: [{ctx}] needs either command (a stdio server) or url (streamable HTTP)")
    args = typed("args", list, [])
    if not all(isinstance(a, str) for a in args):
        raise ConfigError(f"{where}: {ctx}.args must be a list of strings")
    timeout = table.get("timeout", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}: {ctx}.timeout must be a number of seconds above 0")
    approval, tools = typed("approval", str, "ask"), strings("tools")
    decisions = ", ".join(f'"{d.value}"' for d in Decision)
    for key, value in [("approval", approval), *((f"tools.{k}", v) for k, v in tools.items())]:
        if value not in Decision._value2member_map_:
            raise ConfigError(f"{where}: {ctx}.{key} must be one of {decisions}, got {value!r}")
    return McpServerConfig(
        name=name,
        command=command,
        args=list(args),
        env=strings("env"),
        cwd=typed("cwd", str, ""),
        url=url,
        headers=strings("headers"),
        enabled=typed("enabled", bool, True),
        timeout=float(timeout),
        approval=approval,
        tools=tools,
        max_parallel=typed("max_parallel", int, 4),
    )
