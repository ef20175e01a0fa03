"""Lua create-validation cost (issue #4): runs bench/lua_validate.lua.

lua_validate.lua coerces and validates every field of a full
sample_artifact create body through glare.runtime and prints µs per body.
The baseline, measured in the same run by the same lua5.4, is the
interpreter's floor for that loop: one call of a trivial Lua function per
field (same field count, same iteration count), so the ratio is what the
type library costs per field above a bare call.

  /usr/bin/python3 bench/lua.py  (BENCH_LUA_ITERS, default 20000)
"""
import os
import re
import sys

sys.dont_write_bytecode = True      # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

FLOOR = r"""
local nfields, n = tonumber(arg[1]), tonumber(arg[2])
local names, body = {}, {}
for i = 1, nfields do names[i] = "f" .. i; body[names[i]] = i end
local function coerce(_, _, v) return v end
local function validate()
  for i = 1, #names do
    local v = coerce(nil, names[i], body[names[i]])
    if v == nil then error("nil") end
  end
end
for _ = 1, 200 do validate() end
local t0 = os.clock()
for _ = 1, n do validate() end
print(string.format("%.4f", (os.clock() - t0) / n * 1e6))
"""


def main():
    iters = int(B.env_float("BENCH_LUA_ITERS", 20000))
    lua = os.environ.get("LUA", "lua5.4")
    print("== lua: create-body validation, %d iterations" % iters,
          flush=True)
    out = B.run([lua, os.path.join(B.ROOT, "bench", "lua_validate.lua"),
                 str(iters)]).stdout
    print("  " + out.strip())
    m = re.search(r"(\d+) fields: ([0-9.]+) us/op", out)
    if not m:
        print("lua: cannot parse lua_validate.lua output")
        return 2
    nfields, us = int(m.group(1)), float(m.group(2))
    floor = float(B.run([lua, "-", str(nfields), str(iters)],
                        input=FLOOR).stdout)
    B.table("lua: one full sample_artifact create body (%d fields), µs/op"
            % nfields,
            [("validate + coerce, per body", "%.2f µs" % us,
              "%.2f µs bare calls" % floor, "%.0fx" % (us / floor), "", None),
             ("  per field", "%.2f µs" % (us / nfields),
              "%.3f µs" % (floor / nfields), "", "", None)],
            ["baseline: the same loop calling a trivial function per field "
             "(the interpreter's floor); issue #4 sets no target"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
