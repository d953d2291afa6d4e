"""Check that `dvc plots show` renders every chart in a real browser with the network cut off.

    python scripts/check_plots_offline.py [--screenshot PATH] [--keep] [-- EXTRA DVC PLOTS ARGS]

1. runs `dvc plots show -o TMP` (or `dvc plots diff ...` when extra args start with `diff`)
   in the repository, with the repository's own .dvc/config (plots.html_template) and templates;
2. checks TMP/index.html statically: no <script>/<link>/<img>/<iframe> that points at http(s);
3. opens it in headless Chromium with every network path blocked (a proxy to a closed local
   port, every host name unresolvable, background networking off) and Chrome's NetLog on; the
   DOM after 20 s of virtual time must hold one rendered Vega view (<canvas>/<svg class="marks">
   of non-zero size) per `vegaEmbed(...)` call, and the NetLog no http(s)/ws(s) URL at all;
4. saves a full-page screenshot (default: dvc_plots/offline-check.png, git-ignored).

Needs Chromium (Debian: `apt-get install chromium`; or set CHROMIUM=/path/to/chrome). Exit
status 0 when every chart rendered offline, 1 when not, 2 when no browser is found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Tags whose src/href would make the browser fetch something; inline <script> bodies are not looked at.
REMOTE_REF = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"(<script\b[^>]*>).*?</script>", re.IGNORECASE | re.DOTALL)
EMBED_CALL = re.compile(r"vegaEmbed\('#([^']+)'")
MARKS = re.compile(r"<(canvas|svg)\b([^>]*)\bclass=\"marks\"([^>]*)>", re.IGNORECASE)
NETWORK_SCHEMES = ("http:", "https:", "ws:", "wss:")
NO_NETWORK_FLAGS = [
    "--proxy-server=http://127.0.0.1:9",  # discard port: nothing listens, every proxied request fails
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # and no host name resolves
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]


def find_browser() -> str | None:
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def dvc_executable() -> str:
    here = Path(sys.executable).parent / "dvc"  # the venv's dvc, next to this interpreter
    return str(here) if here.exists() else (shutil.which("dvc") or "dvc")


def run_dvc_plots(out: Path, extra: list[str]) -> None:
    args = extra if extra and extra[0] in ("show", "diff") else ["show", *extra]
    cmd = [dvc_executable(), "plots", *args, "-o", str(out)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    if res.returncode != 0 or not (out / "index.html").is_file():
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")


def chromium(browser: str, profile: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--hide-scrollbars", f"--user-data-dir={profile}", *NO_NETWORK_FLAGS, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def page_requests(netlog: Path) -> list[str]:
    """http(s)/ws(s) URLs that the page asked for, from Chrome's NetLog.

    Every network request starts a URL_REQUEST_START_JOB event whose `initiator` is the origin that
    asked for it: the page's (`null` for a file:// page) or `not an origin` for the browser's own
    background requests (update checks and the like), which tell nothing about the page."""
    log = json.loads(netlog.read_text(errors="replace"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = set()
    for event in log.get("events", []):
        params = event.get("params") or {}
        url = str(params.get("url", ""))
        if (event.get("type") == start_job and url.startswith(NETWORK_SCHEMES)
                and params.get("initiator") != "not an origin"):
            urls.add(url)
    return sorted(urls)


def rendered_views(dom: str, ids: list[str]) -> dict[str, bool]:
    """Plot div id -> whether a non-empty Vega canvas/svg sits inside it (views are siblings in order)."""
    result = {}
    for i, pid in enumerate(ids):
        start = dom.find(f'id="{pid}"')
        if start < 0:
            result[pid] = False
            continue
        end = dom.find(f'id="{ids[i + 1]}"', start) if i + 1 < len(ids) else len(dom)
        ok = False
        for m in MARKS.finditer(dom, start, end if end > 0 else len(dom)):
            attrs = m.group(2) + m.group(3)
            w = re.search(r'\bwidth="(\d+(?:\.\d+)?)', attrs)
            h = re.search(r'\bheight="(\d+(?:\.\d+)?)', attrs)
            ok = ok or bool(w and h and float(w.group(1)) > 0 and float(h.group(1)) > 0)
        result[pid] = ok
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="dvc plots show, rendered offline in headless Chromium")
    ap.add_argument("--screenshot", type=Path, default=REPO / "dvc_plots" / "offline-check.png")
    ap.add_argument("--width", type=int, default=1500)
    ap.add_argument("--height", type=int, default=3200)
    ap.add_argument("--keep", action="store_true", help="keep the temporary output directory")
    ap.add_argument("extra", nargs="*", help="after --: `diff REV...` or more `dvc plots show` arguments")
    args = ap.parse_args(argv)

    browser = find_browser()
    if not browser:
        print("no Chromium found: apt-get install chromium (or set CHROMIUM=/path/to/chrome)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="plots_offline_"))
    problems: list[str] = []
    try:
        out = tmp / "dvc_plots"
        run_dvc_plots(out, args.extra)
        page = out / "index.html"
        html = page.read_text(encoding="utf8")

        markup = INLINE_SCRIPT.sub(r"\1</script>", html)  # tags only: the inlined libraries' code is not markup
        remote = [m.group(0) for m in REMOTE_REF.finditer(markup)]
        if remote:
            problems.append(f"index.html references remote resources: {remote[:5]}")
        ids = EMBED_CALL.findall(html)
        n_images = len(re.findall(r"<img\b", markup))

        netlog = tmp / "netlog.json"
        dump = chromium(browser, tmp / "profile", f"--log-net-log={netlog}", "--virtual-time-budget=20000",
                        "--dump-dom", page.as_uri())
        dom = dump.stdout
        if dump.returncode != 0 or "<body" not in dom:
            problems.append(f"chromium --dump-dom failed ({dump.returncode}): {dump.stderr[-2000:]}")
        views = rendered_views(dom, ids)
        missing = [pid for pid, ok in views.items() if not ok]
        if missing:
            problems.append(f"{len(missing)} of {len(ids)} Vega charts did not render: {missing}")
        if not ids:
            problems.append("the page has no Vega chart at all")

        if not netlog.exists():
            problems.append("chromium wrote no NetLog")
        urls = page_requests(netlog) if netlog.exists() else []
        if urls:
            problems.append(f"the page tried the network: {urls[:10]}")

        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = chromium(browser, tmp / "profile", "--virtual-time-budget=20000",
                        f"--window-size={args.width},{args.height}", f"--screenshot={args.screenshot.resolve()}",
                        page.as_uri())
        if shot.returncode != 0 or not args.screenshot.is_file():
            problems.append(f"screenshot failed ({shot.returncode}): {shot.stderr[-2000:]}")

        print(f"page: {page} ({page.stat().st_size // 1024} KiB, {len(ids)} Vega charts, {n_images} images)")
        print(f"rendered offline: {sum(views.values())}/{len(ids)} Vega charts; "
              f"network requests seen: {len(urls)}; remote references: {len(remote)}")
        print(f"screenshot: {args.screenshot}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    print("OK: every chart rendered with the network blocked" if not problems else "FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
