"""The reference: a C++ program built against Xilinx's real ap_fixed.h (the copy hls4ml ships).

Every format is a template instantiation, so the program is generated for a fixed list of formats
and cached by the hash of its source.  Values cross the pipe as C99 hex floats, so nothing rounds.
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


def _instance(f: FixedFormat) -> str:
    return f"convert<{f.width},{f.int_bits},{str(f.signed).lower()},AP_{f.rounding},AP_{f.overflow}>"


class ApFixedOracle:
    """Converts (format index, double) cases with the real ap_fixed, in a cached compiled program."""

    def __init__(self, formats: list[FixedFormat], cache_dir: Path, parts: int = 2) -> None:
        self.formats = formats
        chunks = [formats[i::parts] for i in range(parts)]
        sources = []
        for p, chunk in enumerate(chunks):
            table = ",\n".join(_instance(f) for f in chunk)
            sources.append(
                f"{_PRELUDE}convert_fn table_{p}(unsigned i) {{\n"
                f"static const convert_fn t[] = {{{table}}};\nreturn t[i]; }}\n"
            )
        decls = "".join(f"convert_fn table_{p}(unsigned);\n" for p in range(parts))
        body = "".join(f"  if (id % {parts} == {p}) return table_{p}(id / {parts});\n" for p in range(parts))
        sources.append(f"{_PRELUDE}{decls}convert_fn lookup(unsigned id) {{\n{body}  abort();\n}}\n{_MAIN}")
        digest = hashlib.sha256("".join(sources).encode()).hexdigest()[:16]
        self.binary = cache_dir / f"ap_fixed_oracle_{digest}"
        if not self.binary.exists():
            self._build(sources, cache_dir, digest)

    def _build(self, sources: list[str], cache_dir: Path, digest: str) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, src in enumerate(sources):
            path = cache_dir / f"oracle_{digest}_{i}.cpp"
            path.write_text(src)
            paths.append(path)

        def compile_one(path: Path) -> Path:
            obj = path.with_suffix(".o")
            subprocess.run(["g++", "-O0", "-w", "-c", f"-I{AP_TYPES}", str(path), "-o", str(obj)], check=True)
            return obj

        with ThreadPoolExecutor() as pool:
            objects = list(pool.map(compile_one, paths))
        tmp = self.binary.with_suffix(".tmp")
        subprocess.run(["g++", *map(str, objects), "-o", str(tmp)], check=True)
        tmp.rename(self.binary)

    def __call__(self, cases: list[tuple[int, float]]) -> list[float]:
        text = "".join(f"{i} {float(x).hex()}\n" for i, x in cases)
        out = subprocess.run([str(self.binary)], input=text, capture_output=True, text=True, check=True)
        values = [float.fromhex(line) for line in out.stdout.split()]
        assert len(values) == len(cases), out.stderr
        return values
