"""Refreshes the price snapshot shipped in `src/human/pricing/prices.jsonl` from pydantic's
genai-prices package on PyPI (MIT), and the expected figures of the pricing tests.

    python scripts/refresh_prices.py                  latest genai-prices from PyPI
    python scripts/refresh_prices.py --version 0.2.3  that version
    python scripts/refresh_prices.py --wheel FILE     a wheel already downloaded
    python scripts/refresh_prices.py --golden-only    only recompute tests/data/pricing_cases.json

Why a snapshot and not the package (issue 12): the package needs Python >= 3.11 and pulls
pydantic and httpx2; importing it and pricing one call costs ~350 ms here, against our
budget of 20 ms for the first price lookup, and its data would change under a user's feet
whenever something else upgraded it. So `human` ships the data, dated, and computes with a
small calculator of its own (`human/pricing/calc.py`) that follows the package's rules.

How: `pip download` fetches the wheel (no dependencies, nothing installed), and the data
module inside it (`genai_prices/data.py`, generated Python: `Provider(...)`, `ModelPrice(...)`,
`Decimal('1.5')` ...) is read with `ast`, never imported or executed, and written as plain
JSON keeping only what pricing needs (ids, match rules, prices, dated and time-of-day
conditions, tiers, request variants). An unknown constructor stops the script: a new
concept upstream must be looked at before it is shipped.

The expected figures in tests/data/pricing_cases.json are computed by the package itself
(`genai_prices.calc_price`), so they need it importable at the same version:
`pip install genai-prices==VERSION` (Python >= 3.11) in the venv that runs this script.
Without it the snapshot is still written and the cases are left as they were.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "src" / "human" / "pricing" / "prices.jsonl"
CASES = ROOT / "tests" / "data" / "pricing_cases.json"
PACKAGE = "genai-prices"


# ---- fetching -----------------------------------------------------------------------------------


def download(version: str | None, into: Path) -> Path:
    """The wheel from PyPI through pip itself (no index URL of our own, no install)."""
    spec = f"{PACKAGE}=={version}" if version else PACKAGE
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--dest", str(into), spec], check=True)
    wheels = sorted(into.glob("genai_prices-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download {spec} produced no wheel in {into}")
    return wheels[-1]


def read_wheel(wheel: Path) -> tuple[str, str, str]:
    """(version, data.py source, data_units.py source)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        version = next(line.split(":", 1)[1].strip() for line in archive.read(metadata).decode().splitlines()
                       if line.startswith("Version:"))
        return version, archive.read("genai_prices/data.py").decode(), archive.read(
            "genai_prices/data_units.py").decode()


# ---- converting ---------------------------------------------------------------------------------


def literal(node: ast.AST) -> Any:
    """A node of the generated data module as plain data. Constructor calls become
    {"$": ClassName, **keyword arguments}; Decimal("x") stays the string "x" (exact)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {literal(k): literal(v) for k, v in zip(node.keys, node.values) if k is not None}
    if isinstance(node, ast.Attribute) and ast.unparse(node) == "datetime.UTC":
        return "UTC"
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func)
        args = [literal(arg) for arg in node.args]
        kwargs = {kw.arg: literal(kw.value) for kw in node.keywords if kw.arg is not None}
        if name == "Decimal":
            return str(args[0])
        if name == "datetime.date":
            return dt.date(*args).isoformat()
        if name == "datetime.time":
            if kwargs.pop("tzinfo", "UTC") != "UTC" or kwargs:
                raise SystemExit(f"unexpected time of day: {ast.unparse(node)}")
            return dt.time(*args).isoformat()
        if args:
            raise SystemExit(f"positional arguments in {ast.unparse(node)[:80]}")
        return {"$": name, **kwargs}
    raise SystemExit(f"cannot read {ast.unparse(node)[:80]} in the data module")


def assigned(source: str, name: str) -> Any:
    for node in ast.parse(source).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == name and node.value is not None:  # type: ignore[attr-defined]
            return literal(node.value)  # type: ignore[attr-defined]
    raise SystemExit(f"no `{name} = ...` in the data module")


CLAUSES = {"ClauseStartsWith": "starts_with", "ClauseEndsWith": "ends_with", "ClauseContains": "contains",
           "ClauseRegex": "regex", "ClauseEquals": "equals", "ClauseOr": "or_", "ClauseAnd": "and_"}


def clause(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    kind = value["$"]
    if kind not in CLAUSES:
        raise SystemExit(f"unknown match clause {kind}")
    field = CLAUSES[kind]
    if field in ("or_", "and_"):
        return {field.rstrip("_"): [clause(item) for item in value[field]]}
    return {field: value[field]}


def price_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("$") == "TieredPrices":
        return {"base": value["base"], "tiers": [[tier["start"], tier["price"]] for tier in value["tiers"]]}
    raise SystemExit(f"unknown price value {value!r}")


def model_price(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("$") != "ModelPrice":
        raise SystemExit(f"expected ModelPrice, got {value.get('$')}")
    return {key: price_value(v) for key, v in value.items() if key != "$" and v is not None}


def constraint(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if value["$"] == "StartDateConstraint":
        return {"start_date": value["start_date"]}
    if value["$"] == "TimeOfDateConstraint":
        return {"start_time": value["start_time"], "end_time": value["end_time"]}
    raise SystemExit(f"unknown constraint {value['$']}")


def prices(value: Any) -> Any:
    if isinstance(value, dict):
        return model_price(value)
    out = []
    for item in value:
        if item.get("$") != "ConditionalPrice":
            raise SystemExit(f"expected ConditionalPrice, got {item.get('$')}")
        out.append({"constraint": constraint(item.get("constraint")), "prices": model_price(item["prices"])})
    return out


def model(value: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": value["id"], "match": clause(value["match"]), "prices": prices(value["prices"])}
    variants = value.get("price_variants")
    if variants:
        row["price_variants"] = [
            {"when": v["when"], "prices": model_price(v["prices"]), "constraint": constraint(v.get("constraint"))}
            for v in variants
        ]
    return row


def provider(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": value["id"],
        "api_pattern": value["api_pattern"],
        "provider_match": clause(value.get("provider_match")),
        "model_match": clause(value.get("model_match")),
        "fallback_model_providers": value.get("fallback_model_providers"),
        "models": [model(m) for m in value.get("models", [])],
    }


def snapshot(version: str, data_py: str, units_py: str, wheel: Path, date: str) -> dict[str, Any]:
    return {
        "source": {
            "package": PACKAGE,
            "version": version,
            "wheel": wheel.name,
            "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "license": "MIT, Copyright (c) Pydantic Services Inc. (https://github.com/pydantic/genai-prices)",
            "snapshot_date": date,
        },
        "units": assigned(units_py, "unit_data"),
        "providers": [provider(p) for p in assigned(data_py, "providers")],
    }


def write_snapshot(data: dict[str, Any]) -> None:
    """JSON lines, laid out so that a lookup parses only what it needs (the whole file as
    one document takes ~30 ms to parse, over the 20 ms budget for a first price):

        line 1       {"source", "units", "providers": [{"id", "api_pattern", ..., "line", "models"}]}
        line N       the match rules of that provider's models, in order: [{...}, ...]
        line N+1...  one model per line: {"id", "prices", "price_variants"?}

    One model per line also makes a refresh read as a diff of the models that changed."""
    lines: list[str] = []
    index = []
    for p in data["providers"]:
        models = p["models"]
        entry = {key: value for key, value in p.items() if key != "models"}
        entry.update(line=len(lines) + 2, models=len(models))
        index.append(entry)
        lines.append(compact([m["match"] for m in models]))
        lines += [compact({key: value for key, value in m.items() if key != "match"}) for m in models]
    head = compact({"source": data["source"], "units": data["units"], "providers": index})
    SNAPSHOT.write_text("\n".join([head, *lines]) + "\n", "utf-8")


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ---- expected figures ---------------------------------------------------------------------------


def recompute_cases(version: str) -> bool:
    """Fill `expected` of every case with the package's own calc_price (same version only)."""
    try:
        import genai_prices  # type: ignore[import-not-found]
    except ImportError:
        print(f"genai_prices is not importable: {CASES.name} left as it was "
              f"(pip install {PACKAGE}=={version} to recompute it)")
        return False
    if genai_prices.__version__ != version:
        print(f"genai_prices {genai_prices.__version__} is installed, the snapshot is {version}: "
              f"{CASES.name} left as it was")
        return False
    document = json.loads(CASES.read_text("utf-8"))
    for case in document["cases"]:
        case["expected"] = package_price(genai_prices, case)
    document["computed_by"] = f"{PACKAGE} {version} calc_price"
    CASES.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"{CASES.relative_to(ROOT)}: {len(document['cases'])} cases recomputed with {PACKAGE} {version}")
    return True


def package_price(genai_prices: Any, case: dict[str, Any]) -> Any:
    """What the package says for one case (also used by tests/unit/test_pricing.py)."""
    from genai_prices import Usage, calc_price

    usage = Usage(**{k: v for k, v in case["usage"].items() if v is not None})
    when = dt.datetime.fromisoformat(case["when"])
    try:
        result = calc_price(usage, case.get("package_model", case["model"]), provider_id=case.get("genai_provider"),
                            genai_request_timestamp=when, price_context=case.get("context"))
    except (LookupError, ValueError):  # no such provider or model; usage it cannot price
        return None
    return {"total": str(result.total_price), "input": str(result.input_price), "output": str(result.output_price),
            "model": result.model.id, "provider": result.provider.id}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", help=f"the {PACKAGE} version (default: the latest on PyPI)")
    parser.add_argument("--wheel", type=Path, help="use this wheel instead of downloading one")
    parser.add_argument("--date", default=dt.datetime.now(dt.timezone.utc).date().isoformat(),
                        help="the snapshot date to record (default: today, UTC)")
    parser.add_argument("--golden-only", action="store_true", help="only recompute the test cases")
    args = parser.parse_args(argv)
    if args.golden_only:
        current = json.loads(SNAPSHOT.read_text("utf-8").partition("\n")[0])["source"]["version"]
        return 0 if recompute_cases(current) else 1
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(args.version, Path(tmp))
        version, data_py, units_py = read_wheel(wheel)
        data = snapshot(version, data_py, units_py, wheel, args.date)
        write_snapshot(data)
    models = sum(len(p["models"]) for p in data["providers"])
    print(f"{SNAPSHOT.relative_to(ROOT)}: {PACKAGE} {version}, {len(data['providers'])} providers, "
          f"{models} models, {SNAPSHOT.stat().st_size:,} bytes, dated {args.date}")
    recompute_cases(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
