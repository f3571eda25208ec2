"""Every shell command in README.md and docs/*.md runs as written.

The commands are the ```bash blocks of those pages (```text, ```python and ```toml blocks are
not commands and are not run). Each bash block is exactly one of:

- fast: every command is `... --help`, or a bad-input example annotated `# exit N: <the start of
  the error line>`. Each command runs alone in an empty folder; it must exit 0 (printing usage)
  or N (printing that one error line), and leave the folder empty.
- server: `prune-search ui` / `prune-search dashboard`. Started on a free port (the one change to
  the command as written: `--port`, so a busy 5000/8080 on the machine cannot fail the test),
  checked to answer on 127.0.0.1 and to list the searches run before it, then stopped.
- allowed: needs what CI cannot have (a real cluster, a GPU, a download, a database the user
  owns); listed in ALLOWED with the reason. Keep it short.
- slow (the rest): the whole block runs with `bash -euo pipefail` in one work folder shared by
  every page, pages in PAGES order (a page runs the pages it builds on first, NEEDS), blocks in
  page order. PLACEHOLDERS are filled from the searches that ran before. Search commands use the
  small budgets the docs write, so all slow pages together take a few minutes.

The fast tests also keep docs/cli.md equal to what docs/generate_cli.py writes now, check the
links between the pages, and keep measured figures out of them (they live in BENCHMARKS.md).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGE_FILES = [README, *DOCS]

# Slow pages in the order they run; a page not listed runs after these, in name order.
PAGES = ["README.md", "docs/methods.md", "docs/own-model.md", "docs/results-and-uis.md", "docs/cluster.md"]
# page -> pages whose searches it uses (the README's `tour`, methods.md's `fpgm-flops`)
NEEDS = {"docs/results-and-uis.md": ("README.md", "docs/methods.md"), "docs/cluster.md": ("README.md",)}

# (page, how the block's first command starts) -> why CI cannot run it
ALLOWED = {
    ("README.md", "make demo"):
        "`make test` is CI itself (.ci/run runs it; here it would recurse). `make demo` is a 50-trial "
        "search into the repository's own .prune-search; test_make_demo_is_the_tour_search checks that it "
        "runs `prune-search run --budget 50 --dataset digits`, which the README tour runs at budget 10",
    ("docs/methods.md", "prune-search run --dataset cifar10"):
        "downloads CIFAR-10 (about 170 MB) from the internet, and a search on it takes hours on CPUs",
    ("docs/cluster.md", "ray start --head"):
        "needs several machines running Ray, a GPU, and a PostgreSQL server, MLflow server and S3 bucket "
        "that the user owns",
}

PLACEHOLDERS = {
    "TRIAL_RUN": "the run_id of a trial on the front of the README tour's search `tour` (its best val_acc)",
}

SERVERS = ("prune-search ui", "prune-search dashboard")
EXPECTED_EXIT = re.compile(r"#\s*exit (\d+)(?::\s*(.*?))?\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
COMMENT = re.compile(r"\s+#\s.*$")


# ---- reading the pages -------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence
    text: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[str]:
        """Logical command lines, continuations joined, blank and comment-only lines dropped (heredoc
        bodies come out as lines too: only used to classify blocks, never to run slow ones)."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]

    @property
    def kind(self) -> str:
        cmds = self.commands()
        if any(page == self.page and cmds[0].startswith(start) for page, start in ALLOWED):
            return "allowed"
        if all(c.startswith(SERVERS) for c in cmds):
            return "server"
        if all(is_fast(c) for c in cmds):
            return "fast"
        return "slow"


def is_fast(command: str) -> bool:
    return COMMENT.sub("", command).split()[-1] == "--help" or EXPECTED_EXIT.search(command) is not None


def bash_blocks(path: Path) -> list[Block]:
    page = str(path.relative_to(ROOT))
    out: list[Block] = []
    lang, start, body = None, 0, []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if lang is None:
            match = FENCE.match(line)
            if match:
                lang, start, body = match.group(1), n, []
        elif line.rstrip() == "```":
            if lang == "bash":
                out.append(Block(page, start, "\n".join(body) + "\n"))
            lang = None
        else:
            body.append(line)
    return out


BLOCKS = [b for path in PAGE_FILES for b in bash_blocks(path)]
FAST = [(b.id, c) for b in BLOCKS if b.kind == "fast" for c in b.commands()]


def page_order(page: str) -> tuple[int, str]:
    return (PAGES.index(page) if page in PAGES else len(PAGES), page)


SLOW_PAGES = sorted({b.page for b in BLOCKS if b.kind in ("slow", "server")}, key=page_order)


def command_env() -> dict[str, str]:
    """This environment with .venv's bin first on PATH (so `prune-search` and `python` are the
    project's, as with `. .venv/bin/activate`), and no store or cluster of the caller's."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "RAY_ADDRESS")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


# ---- fast: the pages themselves ----------------------------------------------------------------

def test_every_bash_block_has_one_kind_and_the_allow_list_is_short_and_current():
    assert BLOCKS, "no ```bash blocks found"
    assert {b.kind for b in BLOCKS} <= {"fast", "server", "allowed", "slow"}
    for (page, start), why in ALLOWED.items():
        hits = [b.id for b in BLOCKS if b.page == page and b.commands()[0].startswith(start)]
        assert len(hits) == 1, f"ALLOWED entry {(page, start)} matches {hits}, expected one block ({why})"
    assert len(ALLOWED) <= 4, "the allow-list is for what CI cannot have; write illustrative commands as ```text"
    for b in BLOCKS:
        found = set(re.findall(r"\b[A-Z][A-Z_]{3,}\b", b.text)) & set(PLACEHOLDERS)
        assert not found or b.kind == "slow", f"{b.id}: placeholders {found} only in slow blocks"
    assert set(NEEDS) | set(PAGES) <= {str(p.relative_to(ROOT)) for p in PAGE_FILES}


@pytest.mark.parametrize("where,command", FAST, ids=[f"{w}:{c.split('#')[0].strip()}" for w, c in FAST])
def test_fast_command(where, command, tmp_path):
    expected = EXPECTED_EXIT.search(command)
    code = int(expected.group(1)) if expected else 0
    proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=command_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == code, f"{where}: `{command}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    if code == 0:
        assert proc.stdout.startswith("usage:"), f"{where}: `{command}` printed {proc.stdout[:300]!r}"
    else:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, f"{where}: `{command}` should print one line, printed:\n{proc.stderr}"
        start = (expected.group(2) or "").removesuffix("...").strip()
        assert lines[0].startswith(start), f"{where}: `{command}` printed {lines[0]!r}, the page says {start!r}"
    assert not list(tmp_path.iterdir()), f"{where}: `{command}` left {sorted(p.name for p in tmp_path.iterdir())}"


def test_cli_reference_is_generated_from_the_current_help():
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "generate_cli.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_make_demo_is_the_tour_search():
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    proc = subprocess.run(["make", "-n", "-C", str(ROOT), "demo"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert any(line.endswith("/prune-search run --budget 50 --dataset digits") for line in proc.stdout.splitlines()), \
        proc.stdout
    assert "make demo" in README.read_text() and "prune-search run --budget 50 --dataset digits" in README.read_text()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    out, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def test_links_between_the_pages_resolve():
    broken = []
    for path in PAGE_FILES:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken, broken


MEASURED = [r"\bHV\b[^|\n]{0,20}\d\.\d", r"hypervolume (of |was )?\d\.\d", r"\d+(\.\d+)?\s?% (val|test)\b",
            r"\b(commit|code) [0-9a-f]{7,40}\b", r"\bval [0-9]\.\d{2}", r"\btest [0-9]\.\d{2}"]


def test_pages_are_short_current_and_leave_figures_to_benchmarks():
    assert len(README.read_text().splitlines()) <= 150
    for path in PAGE_FILES:
        text = path.read_text()
        assert not re.search(r"python -m (search\.)?results\.", text), f"{path.name}: use `prune-search <tool>`"
        hits = [m.group(0) for pattern in MEASURED for m in re.finditer(pattern, text)]
        assert not hits, f"{path.name}: measured figures belong in BENCHMARKS.md, found {hits}"


# ---- slow: running the pages -------------------------------------------------------------------

class Workspace:
    """One folder every slow page runs in (as a reader following the pages would), with what each
    page printed."""

    def __init__(self, path: Path):
        self.path = path
        self.env = command_env()
        self.output: dict[str, str] = {}  # page -> everything its blocks printed

    def run_page(self, page: str) -> str:
        if page in self.output:
            return self.output[page]
        for needed in NEEDS.get(page, ()):
            self.run_page(needed)
        printed = []
        for block in (b for b in BLOCKS if b.page == page):
            if block.kind == "slow":
                printed.append(self.run_block(block))
            elif block.kind == "server":
                printed += [self.serve(block, c) for c in block.commands()]
        self.output[page] = "\n".join(printed)
        return self.output[page]

    def run_block(self, block: Block) -> str:
        text = block.text
        for name in PLACEHOLDERS:
            if re.search(rf"\b{name}\b", text):
                text = re.sub(rf"\b{name}\b", self.placeholder(name), text)
        start = time.monotonic()
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=self.path, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        print(f"{block.id}: exit {proc.returncode} in {time.monotonic() - start:.0f}s")
        assert proc.returncode == 0, f"{block.id} exited {proc.returncode}:\n{text}\n--- output (end) ---\n" \
                                     f"{proc.stdout[-6000:]}"
        return proc.stdout

    def placeholder(self, name: str) -> str:
        assert name == "TRIAL_RUN", name
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{self.path / '.prune-search' / 'mlflow.db'}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(experiments, "tags.search = 'tour' and tags.pareto = 'true'",
                                  order_by=["metrics.val_acc DESC"], max_results=1)
        assert runs, "the README tour's search `tour` has no trial on its front"
        return runs[0].info.run_id

    def serve(self, block: Block, command: str) -> str:
        """Start a server command on a free port, check it answers on 127.0.0.1, stop it."""
        argv = shlex.split(COMMENT.sub("", command))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if "--port" in argv:
            argv[argv.index("--port") + 1] = str(port)
        else:
            argv += ["--port", str(port)]
        argv[0] = shutil.which(argv[0], path=self.env["PATH"]) or argv[0]
        log = self.path / f"server-{port}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(argv, cwd=self.path, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # its own process group: stopped with its workers
        start = time.monotonic()
        try:
            while True:
                assert proc.poll() is None, f"{block.id}: `{command}` exited {proc.returncode}:\n{log.read_text()}"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() - start < 180, f"{block.id}: `{command}` did not answer:\n{log.read_text()}"
                time.sleep(1)
            printed = log.read_text()
            assert f"http://127.0.0.1:{port}" in printed, printed
            assert "tour" in printed, f"{block.id}: `{command}` does not list the README's search:\n{printed}"
            print(f"{block.id}: `{' '.join(argv)}` answered in {time.monotonic() - start:.0f}s")
            return printed
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("docs-workspace"))


@pytest.mark.slow
@pytest.mark.parametrize("page", SLOW_PAGES)
def test_page_runs_as_written(page, workspace):
    workspace.run_page(page)


@pytest.mark.slow
def test_own_model_example_reaches_a_convincing_dense_accuracy(workspace):
    """The example's checkpoint, measured by the search itself on its val and test splits."""
    printed = workspace.run_page("docs/own-model.md")
    measured = re.search(r"dense model from checkpoint \S+: measured val_acc=([0-9.]+) test_acc=([0-9.]+)", printed)
    assert measured, printed[-3000:]
    val_acc, test_acc = map(float, measured.groups())
    print(f"own-model example: dense val_acc={val_acc} test_acc={test_acc}")
    assert val_acc >= 0.95 and test_acc >= 0.95, (val_acc, test_acc)
