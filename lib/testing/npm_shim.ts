/** Test support: npm's deno shim, the Node.js `bin.cjs` that `npm install -g deno` can put on PATH (it forwards no signal). */
import { join } from "node:path";

/** The shim beside the globally installed `deno` npm package, when node and npm are there. */
export async function npmShim(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("npm", { args: ["root", "-g"], stdout: "piped", stderr: "null" }).output();
    const shim = join(new TextDecoder().decode(out.stdout).trim(), "deno", "bin.cjs");
    if (!out.success) return undefined;
    await Deno.stat(shim);
    return shim;
  } catch {
    return undefined;
  }
}
