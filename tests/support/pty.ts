/**
 * Runs a command on a pseudo-terminal (Python's `pty`, from Debian's python3), so that its
 * stdout and stderr are a terminal, and returns what it printed there and its exit code.
 * util-linux `script` was used before; with its standard input at end of file (as in CI) it
 * kept waiting after the command had exited.
 */

/** Forks on a pty, copies what the child prints until it closes the pty, then reaps it. */
const PTY_RUNNER = `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = bytearray()
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
`;

/** `argv` run on a pty: its terminal output (stdout and stderr together) and exit code. */
export async function runOnPty(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string; stderr: string }> {
  const r = await new Deno.Command("python3", {
    args: ["-c", PTY_RUNNER, ...argv],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: r.code, output: text.decode(r.stdout), stderr: text.decode(r.stderr) };
}
