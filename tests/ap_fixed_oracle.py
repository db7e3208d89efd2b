"""The reference: a C++ program built against Xilinx's real ap_fixed.h (the copy hls4ml ships).

Every format is a template instantiation, so the program is generated for a fixed list of formats
and cached by the hash of its source.  Values cross the pipe as C99 hex floats or integer codes, so
nothing rounds.
"""

from __future__ import annotations

import hashlib
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hls4ml

from qfx.fixed import FixedFormat

AP_TYPES = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"

_PRELUDE = """#include <ap_fixed.h>
#include <cstdio>
#include <cstdlib>
typedef double (*convert_fn)(double);
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O>
double convert(double x) { ap_fixed_base<W, I, S, Q, O, 0> v(x); return v.to_double(); }
"""

_MAIN = """
int main() {
  unsigned id; char text[128];
  while (scanf("%u %127s", &id, text) == 2) printf("%a\\n", lookup(id)(strtod(text, 0)));
  return 0;
}
"""

# NDEBUG: with a rounding mode, ap_fixed_base::operator= reads the source's first dropped bit before
# checking that it exists, and ap_private asserts (aborts) when it does not: when the target's LSB is
# more than Wa bits above the source's LSB, so that the first dropped bit lies above the source's MSB.
# The header then discards that read (the sign bit stands in for it) and synthesis has no assert, so
# without the assert the oracle computes what the hardware does.
_CAST_PRELUDE = """#define NDEBUG
#include <ap_fixed.h>
#include <cstdio>
#include <cstdlib>
typedef void (*cast_fn)(long long, long long*, long long*);
template <int WA, int IA, bool SA, ap_q_mode QA, ap_o_mode OA, int W, int I, bool S, ap_q_mode Q, ap_o_mode O>
void cast(long long code, long long* held, long long* out) {
  ap_fixed_base<WA, IA, SA, QA, OA, 0> a;
  a.V = ap_int_base<WA, SA>(code).V;  // the source's word itself: no double in between
  ap_fixed_base<W, I, S, Q, O, 0> r = a;
  ap_int_base<WA, SA> a_bits; a_bits.V = a.V; *held = a_bits.to_int64();
  ap_int_base<W, S> r_bits; r_bits.V = r.V; *out = r_bits.to_int64();
}
"""

_CAST_MAIN = """
int main() {
  unsigned id; long long code, held, out;
  while (scanf("%u %lld", &id, &code) == 2) { lookup(id)(code, &held, &out); printf("%lld %lld\\n", held, out); }
  return 0;
}
"""


def _type_args(f: FixedFormat) -> str:
    return f"{f.width},{f.int_bits},{str(f.signed).lower()},AP_{f.rounding},AP_{f.overflow}"


def _instance(f: FixedFormat) -> str:
    return f"convert<{_type_args(f)}>"


def _table_sources(prelude: str, fn_type: str, instances: list[str], main: str, parts: int) -> list[str]:
    """One source per part holding every parts-th function of the table, plus one with lookup() and main()."""
    sources = []
    for p in range(parts):
        table = ",\n".join(instances[p::parts])
        sources.append(
            f"{prelude}{fn_type} table_{p}(unsigned i) {{\nstatic const {fn_type} t[] = {{{table}}};\nreturn t[i]; }}\n"
        )
    decls = "".join(f"{fn_type} table_{p}(unsigned);\n" for p in range(parts))
    body = "".join(f"  if (id % {parts} == {p}) return table_{p}(id / {parts});\n" for p in range(parts))
    sources.append(f"{prelude}{decls}{fn_type} lookup(unsigned id) {{\n{body}  abort();\n}}\n{main}")
    return sources


def _cached_binary(sources: list[str], cache_dir: Path, name: str) -> Path:
    """Compile the sources in parallel into one program, unless the cache already holds it."""
    digest = hashlib.sha256("".join(sources).encode()).hexdigest()[:16]
    binary = cache_dir / f"{name}_{digest}"
    if binary.exists():
        return binary
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, src in enumerate(sources):
        path = cache_dir / f"{name.removeprefix('ap_fixed_')}_{digest}_{i}.cpp"
        path.write_text(src)
        paths.append(path)

    def compile_one(path: Path) -> Path:
        obj = path.with_suffix(".o")
        subprocess.run(["g++", "-O0", "-w", "-c", f"-I{AP_TYPES}", str(path), "-o", str(obj)], check=True)
        return obj

    with ThreadPoolExecutor() as pool:
        objects = list(pool.map(compile_one, paths))
    tmp = binary.with_suffix(".tmp")
    subprocess.run(["g++", *map(str, objects), "-o", str(tmp)], check=True)
    tmp.rename(binary)
    return binary


class ApFixedOracle:
    """Converts (format index, double) cases with the real ap_fixed, in a cached compiled program."""

    def __init__(self, formats: list[FixedFormat], cache_dir: Path, parts: int = 2) -> None:
        self.formats = formats
        # Instance i goes to table i % parts, where lookup() finds it.
        sources = _table_sources(_PRELUDE, "convert_fn", [_instance(f) for f in formats], _MAIN, parts)
        self.binary = _cached_binary(sources, cache_dir, "ap_fixed_oracle")

    def __call__(self, cases: list[tuple[int, float]]) -> list[float]:
        text = "".join(f"{i} {float(x).hex()}\n" for i, x in cases)
        out = subprocess.run([str(self.binary)], input=text, capture_output=True, text=True, check=True)
        values = [float.fromhex(line) for line in out.stdout.split()]
        assert len(values) == len(cases), out.stderr
        return values


class ApFixedCastOracle:
    """Casts ``ap_fixed -> ap_fixed`` with the real header: ``S a; a.V = code; T r = a;`` for each
    (pair index, source code) case, where pairs[i] is the (source S, target T) format pair.

    The source is set from its integer code (its value is code * 2^-F), never through a double, so a
    53-bit source holds exactly the intended value.  Returns per case the code the source then holds
    (read back, to prove it) and the target's code (its value is that times 2^-F of the target).
    """

    def __init__(self, pairs: list[tuple[FixedFormat, FixedFormat]], cache_dir: Path, parts: int = 2) -> None:
        self.pairs = pairs
        instances = [f"cast<{_type_args(src)},{_type_args(dst)}>" for src, dst in pairs]
        sources = _table_sources(_CAST_PRELUDE, "cast_fn", instances, _CAST_MAIN, parts)
        self.binary = _cached_binary(sources, cache_dir, "ap_fixed_cast_oracle")

    def __call__(self, cases: list[tuple[int, int]]) -> list[tuple[int, int]]:
        text = "".join(f"{i} {code}\n" for i, code in cases)
        out = subprocess.run([str(self.binary)], input=text, capture_output=True, text=True, check=True)
        numbers = [int(word) for word in out.stdout.split()]
        assert len(numbers) == 2 * len(cases), out.stderr
        return list(zip(numbers[::2], numbers[1::2], strict=True))
