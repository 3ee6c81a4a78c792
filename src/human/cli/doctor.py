"""`human doctor`: probe the endpoint, print what works as a pass / fail / n/a table with
one line of advice per failure, save the capability profile the client then uses.

Exit code 0 when no row failed, 1 otherwise (2, as everywhere, for a usage error).
"""

from __future__ import annotations

import argparse
import os

from .. import doctor
from ..discover import servers_from_env
from .output import Output
from .table import table


def run(args: argparse.Namespace, out: Output) -> int:
    report = doctor.diagnose(
        config=args.config,
        provider=args.provider,
        model=args.model,
        save=not args.no_save,
        timeout=args.timeout,
        local_servers=servers_from_env(os.environ, doctor.LOCAL_SERVERS),
        announce=out.info,
    )
    if args.json:
        out.json(report.to_json())
    else:
        render(report, out, saving=not args.no_save)
    return 0 if report.ok else 1


def render(report: doctor.Report, out: Output, *, saving: bool = True) -> None:
    if report.url:
        out.line(f"{report.provider} · {report.model} · {report.url}")
    out.line(table(["check", "result", "detail"],
                   [[check.name, check.status, check.detail] for check in report.checks], max_width=120))
    failures = [check for check in report.checks if check.status == doctor.FAIL and check.advice]
    if failures:
        out.line("")
        out.line("to fix:")
        for check in failures:
            out.line(f"  {check.name}: {check.advice}")
    if report.url:
        out.line("")
        out.line(_profile_line(report, saving))
    if report.scanned:
        out.line("")
        _render_found(report, out)


def _profile_line(report: doctor.Report, saving: bool) -> str:
    profile = report.profile
    if profile is None:
        return "profile: nothing learned, nothing saved"
    changes = [f"rename {old} to {new}" for old, new in profile.rename.items()]
    changes += [f"leave out {name}" for name in sorted(profile.drop)]
    effect = ", ".join(changes) + " for this endpoint" if changes else ""
    if not saving:
        return "profile: not saved (--no-save)" + (f"; saved, human would {effect}" if effect else "")
    if not effect:
        return f"profile: saved to {report.saved_to}; no request changes needed"
    return (f"profile: saved to {report.saved_to}; human will {effect} "
            "(each change logged as a warning and listed in response.adjustments)")


def _render_found(report: doctor.Report, out: Output) -> None:
    if not report.found:
        tried = ", ".join(f"{server.name} :{server.port}" for server in doctor.LOCAL_SERVERS)
        out.line(f"local servers: none answered on 127.0.0.1 ({tried})")
        return
    out.line("local servers on 127.0.0.1 (default ports):")
    rows = []
    for found in report.found:
        if found.models is None:
            rows.append([found.name, found.base_url, found.detail])
        else:
            count = f"{len(found.models)} model{'s' if len(found.models) != 1 else ''}"
            sample = ", ".join(found.models[:3]) + (", …" if len(found.models) > 3 else "")
            rows.append([found.name, found.base_url, f"{count}: {sample}" if sample else count])
    out.line(table(["server", "base URL", "models"], rows, max_width=80))
    usable = [found for found in report.found if found.models is not None]
    if usable and report.url:  # (with no provider the endpoint row already says this)
        out.line(f"  check one: human doctor --provider custom:{usable[0].base_url}")
