#!/usr/bin/env python3
"""Disassembles what C2 compiled for a method, where no hsdis library loads.

JDK 25 prints compiled code with -XX:CompileCommand=print,<Class>::<method>; without a matching hsdis plug-in (the
Debian package libhsdis0-fcml is too old for JDK 25) it prints the code as hex words under "[MachCode]". This turns
those words back into bytes and disassembles them with objdump.

  java ... -XX:+UnlockDiagnosticVMOptions -XX:CompileCommand=print,*SignTileMatmul::tileSums ... > compile.log
  python3 bench/scripts/c2-disasm.py compile.log SignTileMatmul::tileSums [N]

N picks the method's Nth C2 compile in the log (default: the last; on-stack-replacement compiles are skipped).
"""
import re
import subprocess
import sys


def main():
    log = open(sys.argv[1], errors="replace").read().split("\n")
    name = sys.argv[2]
    starts = [i for i, line in enumerate(log)
              if line.startswith("Compiled method (c2)") and name in line and "%" not in line]
    if not starts:
        sys.exit("no C2 compile of " + name + " in " + sys.argv[1])
    first = starts[int(sys.argv[3]) if len(sys.argv) > 3 else -1]
    code = bytearray()
    base = None
    for line in log[first + 1:]:
        if line.startswith(("Compiled method", "[Stub Code]", "[Exception Handler]")):
            break
        m = re.match(r"\s+0x([0-9a-f]+): ((?:[0-9a-f]{4} ?\|? ?)+)\s*$", line)
        if not m:
            continue
        address = int(m.group(1), 16)
        if base is None:
            base = address
        if address - base < len(code):
            continue  # the same words again (a comment line repeats the address)
        code.extend(b"\x90" * (address - base - len(code)))
        code.extend(bytes.fromhex("".join(m.group(2).replace("|", "").split())))
    with open("/tmp/c2-disasm.bin", "wb") as f:
        f.write(code)
    print(subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", "--adjust-vma=" + hex(base),
                          "/tmp/c2-disasm.bin"], capture_output=True, text=True, check=True).stdout)


if __name__ == "__main__":
    main()
