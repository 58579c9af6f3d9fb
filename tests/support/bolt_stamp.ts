/**
 * Backdates records in a STOPPED containerd's metadata DB (bbolt) in place, without Go: reads
 * the file, walks the B+tree from the newest valid meta page to the bucket
 * `v1/<namespace>/content/blob/<digest>` (or `v1/<namespace>/containers/<id>`), and overwrites
 * the bytes of its `createdat` and `updatedat` values (Go's time.Time.MarshalBinary: version 1,
 * seconds since year 1, nanoseconds, zone offset) with an older time of the same length.
 * bbolt keeps no checksum on data pages, so a same-length value rewrite leaves a valid DB;
 * `ctr content ls` then prints the AGE and `ctr containers info` the CreatedAt.
 *
 * Layout (bbolt's page.go, bucket.go): page header = id u64, flags u16, count u16, overflow u32;
 * meta = magic u32, version u32, pageSize u32, flags u32, root bucket (root u64, seq u64),
 * freelist u64, pgid u64, txid u64, checksum u64; branch element = pos u32, ksize u32, pgid u64;
 * leaf element = flags u32, pos u32, ksize u32, vsize u32 (flag 1: the value is a bucket header
 * root u64, seq u64, followed by an inline page when root is 0). Little-endian throughout.
 *
 * Needs --allow-read and --allow-write on the DB file.
 *
 * @module
 */

const HEADER = 16;
const ELEMENT = 16;
const BRANCH = 0x01;
const LEAF = 0x02;
const META = 0x04;
const MAGIC = 0xed0cdaed;
const BUCKET_FLAG = 0x01;
/** Seconds from 0001-01-01 to 1970-01-01 (Go's unixToInternal). */
const UNIX_TO_INTERNAL = 62135596800n;

/** One leaf element: its key and where its value lies in the file. */
interface Entry {
  key: string;
  flags: number;
  value: number;
  size: number;
}

class BoltFile {
  readonly view: DataView;
  readonly pageSize: number;
  readonly rootPage: number;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const metas = [0, 1].map((i) => this.#meta(i)).filter((m) => m !== null);
    if (metas.length === 0) throw new Error("Not a bbolt file (no valid meta page)");
    const newest = metas.reduce((a, b) => (b.txid > a.txid ? b : a));
    this.pageSize = newest.pageSize;
    this.rootPage = newest.root;
  }

  /** Meta page `i` (page size read from page 0's meta, as bbolt does), or null if not one. */
  #meta(i: number): { pageSize: number; root: number; txid: bigint } | null {
    const size0 = this.view.getUint32(HEADER + 8, true);
    const at = i * size0;
    if (at + HEADER + 64 > this.bytes.length) return null;
    if (!(this.view.getUint16(at + 8, true) & META)) return null;
    if (this.view.getUint32(at + HEADER, true) !== MAGIC) return null;
    return {
      pageSize: this.view.getUint32(at + HEADER + 8, true),
      root: Number(this.view.getBigUint64(at + HEADER + 16, true)),
      txid: this.view.getBigUint64(at + HEADER + 48, true),
    };
  }

  /** Every leaf element of the tree whose root page starts at byte `page`. */
  entries(page: number): Entry[] {
    const flags = this.view.getUint16(page + 8, true);
    const count = this.view.getUint16(page + 10, true);
    const out: Entry[] = [];
    for (let i = 0; i < count; i++) {
      const el = page + HEADER + i * ELEMENT;
      if (flags & BRANCH) {
        const child = Number(this.view.getBigUint64(el + 8, true));
        out.push(...this.entries(child * this.pageSize));
      } else if (flags & LEAF) {
        const pos = this.view.getUint32(el + 4, true);
        const ksize = this.view.getUint32(el + 8, true);
        const key = new TextDecoder().decode(this.bytes.subarray(el + pos, el + pos + ksize));
        const value = el + pos + ksize;
        out.push({
          key,
          flags: this.view.getUint32(el, true),
          value,
          size: this.view.getUint32(el + 12, true),
        });
      } else {
        throw new Error(`Unexpected bbolt page flags ${flags} at byte ${page}`);
      }
    }
    return out;
  }

  /** The root page (byte offset) of the nested bucket described by `entry`. */
  bucketRoot(entry: Entry): number {
    if (!(entry.flags & BUCKET_FLAG)) throw new Error(`"${entry.key}" is not a bucket`);
    const root = Number(this.view.getBigUint64(entry.value, true));
    return root === 0 ? entry.value + 16 : root * this.pageSize;
  }

  /** The root page of bucket `names` (a path from the top). */
  bucket(names: string[]): number {
    let page = this.rootPage * this.pageSize;
    for (const [i, name] of names.entries()) {
      const entry = this.entries(page).find((e) => e.key === name);
      if (entry === undefined) throw new Error(`No bucket "${names.slice(0, i + 1).join("/")}"`);
      page = this.bucketRoot(entry);
    }
    return page;
  }
}

/** Overwrites a MarshalBinary time value at `at` with `unixSeconds`, keeping its zone bytes. */
function writeTime(view: DataView, at: number, size: number, unixSeconds: number): void {
  const version = view.getUint8(at);
  if (!((version === 1 && size === 15) || (version === 2 && size === 16))) {
    throw new Error(`Unexpected time encoding (version ${version}, ${size} bytes)`);
  }
  const whole = Math.floor(unixSeconds);
  view.setBigInt64(at + 1, BigInt(whole) + UNIX_TO_INTERNAL, false);
  view.setUint32(at + 9, Math.round((unixSeconds - whole) * 1e9) % 1e9, false);
}

/**
 * Sets `createdat` and `updatedat` of each of `ids` under bucket `v1/<ns>/<kind>` of the bbolt
 * DB at `path` to `now - ageSeconds`. containerd must not be running. Throws, naming what is
 * missing, if a bucket or id is not there.
 */
export async function backdate(
  path: string,
  ns: string,
  kind: "content" | "containers",
  ids: string[],
  ageSeconds: number,
): Promise<void> {
  const db = new BoltFile(await Deno.readFile(path));
  const names = kind === "content" ? ["v1", ns, "content", "blob"] : ["v1", ns, "containers"];
  const parent = db.entries(db.bucket(names));
  const stamp = Date.now() / 1000 - ageSeconds;
  for (const id of ids) {
    const entry = parent.find((e) => e.key === id);
    if (entry === undefined) throw new Error(`No ${kind} "${id}" in namespace "${ns}"`);
    const fields = db.entries(db.bucketRoot(entry));
    for (const key of ["createdat", "updatedat"]) {
      const field = fields.find((e) => e.key === key);
      if (field === undefined) throw new Error(`No "${key}" for ${kind} "${id}"`);
      writeTime(db.view, field.value, field.size, stamp);
    }
  }
  await Deno.writeFile(path, db.bytes);
}
