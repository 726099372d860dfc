// The union filesystem: a writable upper directory over read-only lower directories, with
// an optional case-insensitive lookup. Everything written goes to the upper directory;
// deletions of lower entries leave overlay whiteouts (character devices 0/0) and recreated
// directories are marked opaque (user.overlay.opaque=y), the same marks the kernel overlay
// and fuse-overlayfs use, so `fim-layer commit` carries them into the next layer whatever
// overlay type wrote them.
//
// We are the only writer below the mount while it lives, so what we learn about where a
// name lives (which branch, whether a lower one has it) is kept and updated in place.
import {
  chmodSync,
  closeSync,
  copyFileSync,
  fsyncSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  lchownSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "../../lib/fs.ts";
import { isUtf8, osConstants } from "../../lib/node.ts";
import * as libc from "../../lib/fuse/libc.ts";
import { SetattrValid, type Caller, type DirEntry, type Entry, type Filesystem, type Setattr } from "../../lib/fuse/session.ts";

const { ENOENT, ENOTDIR, EEXIST, ENOTEMPTY, EXDEV, EINVAL, EBADF, ENODATA, EPERM, EISDIR } = osConstants().errno;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const O_ACCMODE = 3;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_NOCTTY = 0o400;
const O_TRUNC = 0o1000;
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const OPAQUE_MARKS = ["user.overlay.opaque", "trusted.overlay.opaque", "user.fuseoverlayfs.opaque"];
const OPAQUE_FILE = ".wh..wh..opq";
/** Our own bookkeeping in extended attributes: never shown to the guest. */
const HIDDEN_XATTR = /^(trusted|user)\.(overlay|fuseoverlayfs)\./;

export interface UnionOptions {
  /** The writable directory. */
  upper: string;
  /** Read-only directories, the topmost first. */
  lowers: string[];
  /** Same filesystem as `upper`: copy-ups are written there, then renamed into place. */
  work?: string;
  casefold: boolean;
}

/** Where an entry lives; shared by every spelling the kernel knows it by (casefold). */
interface Place {
  readonly key: number;
  /** Under which `<parent place key>/<name>` it is found, while it is. */
  slot: string | undefined;
  /** The nodes (spellings) pointing at it. */
  readonly users: Set<Node>;
  /** The topmost branch holding it (0 is the upper directory). */
  branch: number;
  /** For a directory: the branches its merged view is made of, topmost first. */
  dirs: number[] | undefined;
  /** A lower branch has this name too: deleting it needs a whiteout. */
  inLower: boolean;
  /** Casefold index of a directory: folded name → name on disk. */
  fold?: Map<string, string>;
}

/**
 * A node the kernel knows. With casefold each spelling is its own node (as with libfuse's
 * path-based API), so that a case-only rename reaches us instead of being a no-op.
 */
interface Node {
  readonly id: number;
  parent: Node | undefined;
  /** The name the kernel knows this node by (with casefold, the spelling it was looked up with). */
  name: string;
  /** The name on disk. */
  real: string;
  lookups: number;
  place: Place;
}

interface Resolved {
  real: string;
  stat: libc.Stat;
  branch: number;
  dirs: number[] | undefined;
  inLower: boolean;
}

const bytes = (path: string) => Buffer.from(path, "latin1");
const isDir = (mode: number) => (mode & S_IFMT) === S_IFDIR;
const isWhiteout = (stat: libc.Stat) => (stat.mode & S_IFMT) === S_IFCHR && stat.rdev === 0;

/** The case-insensitive key of a name (a byte string): Unicode lower case when it is UTF-8. */
function foldName(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(name)) return name.toLowerCase();
  const raw = bytes(name);
  return isUtf8(raw) ? raw.toString("utf8").toLowerCase() : `\0${name}`;
}

export class UnionFs implements Filesystem {
  private readonly roots: string[];
  private readonly work: string | undefined;
  private readonly nodes = new Map<number, Node>();
  private readonly byName = new Map<string, Node>();
  private readonly places = new Map<string, Place>();
  private nextPlace = 1;
  private readonly files = new Map<number, { fd: number; node: number }>();
  private readonly listings = new Map<number, DirEntry[]>();
  private readonly devices = new Map<number, number>();
  private nextId = 2;
  private nextHandle = 1;
  private copies = 0;

  constructor(private readonly options: UnionOptions) {
    const latin1 = (path: string) => Buffer.from(path).toString("latin1");
    this.roots = [options.upper, ...options.lowers].map(latin1);
    this.work = options.work === undefined ? undefined : latin1(options.work);
    // The merged root stops at the first opaque branch, like any directory.
    const dirs: number[] = [];
    for (const branch of this.roots.keys()) {
      dirs.push(branch);
      if (this.opaque(branch, "")) break;
    }
    const root: Node = { id: 1, parent: undefined, name: "", real: "", lookups: 1, place: { key: 0, slot: undefined, users: new Set(), branch: 0, dirs, inLower: false } };
    this.nodes.set(1, root);
  }

  /** How many nodes and places are kept (for tests: both shrink back as the kernel forgets). */
  get kept(): { nodes: number; places: number } {
    return { nodes: this.nodes.size, places: this.places.size };
  }

  // ---- paths and nodes ----

  private path(node: Node): string {
    let path = node.real;
    for (let up = node.parent; up && up.parent; up = up.parent) path = `${up.real}/${path}`;
    return path;
  }

  private full(branch: number, relative: string): string {
    return relative ? `${this.roots[branch]}/${relative}` : this.roots[branch]!;
  }

  private node(id: number): Node {
    const node = this.nodes.get(id);
    if (!node) throw ENOENT;
    return node;
  }

  private directory(id: number): Node {
    const node = this.node(id);
    if (!node.place.dirs) throw ENOTDIR;
    return node;
  }

  private stat(path: string): libc.Stat {
    return this.distinct(libc.lstat(path));
  }

  /** Inode numbers of different branches may collide: each device gets its own range. */
  private distinct(stat: libc.Stat): libc.Stat {
    let device = this.devices.get(stat.dev);
    if (device === undefined) this.devices.set(stat.dev, (device = this.devices.size));
    stat.ino += device * 2 ** 40;
    return stat;
  }

  private tryStat(path: string): libc.Stat | undefined {
    try {
      return this.stat(path);
    } catch (code) {
      if (code === ENOENT || code === ENOTDIR) return undefined;
      throw code;
    }
  }

  private opaque(branch: number, relative: string): boolean {
    const path = this.full(branch, relative);
    let names: Buffer | number;
    try {
      names = libc.listxattr(path, 65536);
    } catch {
      names = Buffer.alloc(0);
    }
    if (typeof names !== "number" && names.length > 0) {
      for (const mark of names.toString("latin1").split("\0")) {
        if (!OPAQUE_MARKS.includes(mark)) continue;
        const value = libc.getxattr(path, mark, 16);
        if (typeof value !== "number" && value.toString() === "y") return true;
      }
    }
    return libc.exists(`${path}/${OPAQUE_FILE}`);
  }

  /** Where `name` lives under a directory, or undefined when it does not (or is whited out). */
  private resolve(parent: Node, name: string): Resolved | undefined {
    if (name === OPAQUE_FILE) return undefined;
    const relative = parent.parent ? `${this.path(parent)}/${name}` : name;
    let found: Resolved | undefined;
    let merging = false;
    for (const branch of parent.place.dirs!) {
      const stat = this.tryStat(this.full(branch, relative));
      if (!stat) continue;
      if (!found) {
        if (isWhiteout(stat)) return undefined;
        const dir = isDir(stat.mode);
        found = { real: name, stat, branch, dirs: dir ? [branch] : undefined, inLower: false };
        merging = dir && !this.opaque(branch, relative);
        continue;
      }
      if (isWhiteout(stat)) break;
      found.inLower = true;
      if (!merging || !isDir(stat.mode)) break;
      found.dirs!.push(branch);
      if (this.opaque(branch, relative)) break;
    }
    return found;
  }

  /** Exact name first; with casefold, then any name that differs only in case. */
  private find(parent: Node, name: string): Resolved | undefined {
    const exact = this.resolve(parent, name);
    if (exact || !this.options.casefold) return exact;
    const real = this.foldIndex(parent).get(foldName(name));
    return real === undefined || real === name ? undefined : this.resolve(parent, real);
  }

  private foldIndex(dir: Node): Map<string, string> {
    if (dir.place.fold) return dir.place.fold;
    const index = new Map<string, string>();
    for (const entry of this.merged(dir)) {
      const key = foldName(entry.name);
      if (!index.has(key)) index.set(key, entry.name);
    }
    return (dir.place.fold = index);
  }

  /** The shared place of an entry, updated from `where`; a new one is kept only when `keep`. */
  private place(parent: Node, where: Resolved, keep: boolean): Place {
    const slot = `${parent.place.key}/${where.real}`;
    const known = this.places.get(slot);
    if (known) return Object.assign(known, { branch: where.branch, dirs: where.dirs, inLower: where.inLower });
    const place: Place = { key: this.nextPlace++, slot: undefined, users: new Set(), branch: where.branch, dirs: where.dirs, inLower: where.inLower };
    if (keep) this.places.set((place.slot = slot), place);
    return place;
  }

  /** Points a node at a place; a place no node uses any more is dropped (memory stays bounded). */
  private use(node: Node, place: Place | undefined): void {
    if (node.place === place) return;
    const old = node.place as Place | undefined;
    if (place) (node.place = place).users.add(node);
    if (!old) return;
    old.users.delete(node);
    if (old.users.size === 0 && old.slot !== undefined && this.places.get(old.slot) === old) this.places.delete(old.slot);
  }

  private remember(parent: Node, name: string, where: Resolved): Node {
    const key = `${parent.id}/${name}`;
    const place = this.place(parent, where, true);
    let node = this.byName.get(key);
    if (!node) {
      node = { id: this.nextId++, parent, name, real: where.real, lookups: 0, place: undefined! };
      this.nodes.set(node.id, node);
      this.byName.set(key, node);
    }
    node.real = where.real;
    this.use(node, place);
    node.lookups++;
    return node;
  }

  /** A node for an entry the kernel has not looked up (kept nowhere). */
  private transient(parent: Node, where: Resolved): Node {
    return { id: 0, parent, name: where.real, real: where.real, lookups: 0, place: this.place(parent, where, false) };
  }

  private learned(parent: Node, name: string): void {
    if (parent.place.fold && !parent.place.fold.has(foldName(name))) parent.place.fold.set(foldName(name), name);
  }

  /** The merged listing of a directory: top branch wins, whiteouts and our marks hidden. */
  private merged(dir: Node): DirEntry[] {
    const relative = this.path(dir);
    const seen = new Set<string>();
    const entries: DirEntry[] = [];
    for (const branch of dir.place.dirs!) {
      const base = this.full(branch, relative);
      let names: Buffer[];
      try {
        names = readdirSync(bytes(base), { encoding: "buffer" }) as Buffer[];
      } catch {
        continue;
      }
      for (const raw of names) {
        const name = raw.toString("latin1");
        if (seen.has(name)) continue;
        seen.add(name);
        if (name === OPAQUE_FILE) continue;
        const stat = this.tryStat(`${base}/${name}`);
        if (!stat || isWhiteout(stat)) continue;
        entries.push({ name, ino: stat.ino, type: (stat.mode & S_IFMT) >>> 12 });
      }
    }
    return entries;
  }

  // ---- copy-up ----

  /** Makes sure a directory exists in the upper branch (its parents first). */
  private upperDir(dir: Node): void {
    if (dir.place.dirs![0] === 0) return;
    this.copyUp(dir);
  }

  private copyUp(node: Node): void {
    if (node.place.branch === 0) return;
    const parent = node.parent!;
    this.upperDir(parent);
    const relative = this.path(node);
    const source = this.full(node.place.branch, relative);
    const target = this.full(0, relative);
    const stat = libc.lstat(source);
    const type = stat.mode & S_IFMT;
    if (type === S_IFDIR) {
      mkdirSync(bytes(target), { mode: 0o700 });
      this.copyMetadata(source, target, stat);
      node.place.dirs = [0, ...node.place.dirs!];
    } else {
      // Written aside and renamed in: a copy cut short is never visible under its name.
      const staging = this.work ? `${this.work}/copy-up-${process.pid}-${this.copies++}` : target;
      if (type === S_IFREG) copyFileSync(bytes(source), bytes(staging));
      else if (type === S_IFLNK) symlinkSync(readlinkSync(bytes(source), { encoding: "buffer" }), bytes(staging));
      else libc.mknod(staging, stat.mode, libc.kernelDev(stat.rdev));
      this.copyMetadata(source, staging, stat);
      if (staging !== target) {
        try {
          renameSync(bytes(staging), bytes(target));
        } catch (error) {
          unlinkSync(bytes(staging));
          throw error;
        }
      }
    }
    node.place.branch = 0;
    node.place.inLower = true;
  }

  private copyMetadata(source: string, target: string, stat: libc.Stat): void {
    const link = (stat.mode & S_IFMT) === S_IFLNK;
    try {
      lchownSync(bytes(target), stat.uid, stat.gid);
    } catch {
      // an owner this namespace cannot map stays ours
    }
    if (!link) chmodSync(bytes(target), stat.mode & 0o7777);
    try {
      const names = libc.listxattr(source, 65536);
      if (typeof names !== "number") {
        for (const name of names.toString("latin1").split("\0")) {
          if (!name || HIDDEN_XATTR.test(name)) continue;
          const value = libc.getxattr(source, name, 65536);
          if (typeof value !== "number") libc.setxattr(target, name, value, 0);
        }
      }
    } catch {
      // extended attributes the upper filesystem refuses are dropped, as cp -a does
    }
    libc.utimens(target, stat.atime, stat.atimeNsec, stat.mtime, stat.mtimeNsec);
  }

  private whiteout(parent: Node, name: string): void {
    this.upperDir(parent);
    libc.mknod(this.full(0, parent.parent ? `${this.path(parent)}/${name}` : name), S_IFCHR, 0);
  }

  /**
   * Hides what lower layers have under an upper directory. The xattr is what the kernel
   * overlay reads; on a filesystem without user xattrs, fuse-overlayfs's marker file.
   */
  private markOpaque(path: string): void {
    try {
      libc.setxattr(path, OPAQUE_MARKS[0]!, Buffer.from("y"), 0);
    } catch {
      writeFileSync(bytes(`${path}/${OPAQUE_FILE}`), "");
    }
  }

  /** Clears the way for a new upper entry; `hidLower` when a whiteout was there (a lower name is hidden). */
  private prepareCreate(parent: Node, name: string): { path: string; hidLower: boolean } {
    if (this.find(parent, name)) throw EEXIST;
    this.upperDir(parent);
    const path = this.full(0, parent.parent ? `${this.path(parent)}/${name}` : name);
    const existing = this.tryStat(path);
    if (existing && isWhiteout(existing)) {
      unlinkSync(bytes(path));
      return { path, hidLower: true };
    }
    return { path, hidLower: false };
  }

  private created(parent: Node, name: string, hidLower: boolean): Entry {
    this.learned(parent, name);
    const where = this.resolve(parent, name);
    if (!where) throw ENOENT;
    where.inLower ||= hidLower;
    const node = this.remember(parent, name, where);
    return { node: node.id, stat: where.stat };
  }

  // ---- operations ----

  lookup(parentId: number, name: string): Entry {
    const parent = this.directory(parentId);
    const where = this.find(parent, name);
    if (!where) throw ENOENT;
    const node = this.remember(parent, name, where);
    return { node: node.id, stat: where.stat };
  }

  forget(id: number, count: number): void {
    const node = this.nodes.get(id);
    if (!node || id === 1) return;
    node.lookups -= count;
    if (node.lookups > 0) return;
    this.nodes.delete(id);
    const key = `${node.parent?.id}/${node.name}`;
    if (this.byName.get(key) === node) this.byName.delete(key);
    this.use(node, undefined);
  }

  getattr(id: number, fh: number | undefined): libc.Stat {
    const node = this.node(id);
    try {
      return this.stat(this.full(node.place.branch, this.path(node)));
    } catch (code) {
      // An open file whose name is gone (unlinked, or renamed through another spelling):
      // fstat(2) does not tell us the handle, so any open handle of the node answers.
      const handle = fh !== undefined ? this.files.get(fh) : [...this.files.values()].find((open) => open.node === id);
      if (handle === undefined || code !== ENOENT) throw code;
      return this.fstat(handle.fd);
    }
  }

  private fstat(fd: number): libc.Stat {
    const s = fstatSync(fd, { bigint: true });
    const split = (ns: bigint): [number, number] => [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
    const [atime, atimeNsec] = split(s.atimeNs);
    const [mtime, mtimeNsec] = split(s.mtimeNs);
    const [ctime, ctimeNsec] = split(s.ctimeNs);
    const number = (value: bigint) => Number(value);
    return this.distinct({
      ...{ dev: number(s.dev), ino: number(s.ino), mode: number(s.mode), nlink: number(s.nlink), uid: number(s.uid), gid: number(s.gid) },
      ...{ rdev: number(s.rdev), size: number(s.size), blocks: number(s.blocks), atime, atimeNsec, mtime, mtimeNsec, ctime, ctimeNsec },
    });
  }

  setattr(id: number, changes: Setattr): libc.Stat {
    const node = this.node(id);
    this.copyUp(node);
    const path = this.full(0, this.path(node));
    const { valid } = changes;
    if (valid & SetattrValid.MODE) chmodSync(bytes(path), changes.mode & 0o7777);
    if (valid & (SetattrValid.UID | SetattrValid.GID)) {
      lchownSync(bytes(path), valid & SetattrValid.UID ? changes.uid : -1, valid & SetattrValid.GID ? changes.gid : -1);
    }
    if (valid & SetattrValid.SIZE) {
      const fd = valid & SetattrValid.FH ? this.files.get(changes.fh)?.fd : undefined;
      if (fd !== undefined) ftruncateSync(fd, changes.size);
      else truncateSync(bytes(path), changes.size);
    }
    if (valid & (SetattrValid.ATIME | SetattrValid.MTIME)) {
      const time = (set: number, now: number, seconds: number, nsec: number): [number, number] =>
        valid & now ? [0, libc.UTIME_NOW] : valid & set ? [seconds, nsec] : [0, libc.UTIME_OMIT];
      const [atime, atimeNsec] = time(SetattrValid.ATIME, SetattrValid.ATIME_NOW, changes.atime, changes.atimeNsec);
      const [mtime, mtimeNsec] = time(SetattrValid.MTIME, SetattrValid.MTIME_NOW, changes.mtime, changes.mtimeNsec);
      libc.utimens(path, atime, atimeNsec, mtime, mtimeNsec);
    }
    return this.stat(path);
  }

  readlink(id: number): string {
    const node = this.node(id);
    return readlinkSync(bytes(this.full(node.place.branch, this.path(node))), { encoding: "buffer" }).toString("latin1");
  }

  symlink(parentId: number, name: string, target: string, _caller: Caller): Entry {
    const parent = this.directory(parentId);
    const { path, hidLower } = this.prepareCreate(parent, name);
    symlinkSync(bytes(target), bytes(path));
    return this.created(parent, name, hidLower);
  }

  mknod(parentId: number, name: string, mode: number, rdev: number, _caller: Caller): Entry {
    const parent = this.directory(parentId);
    const { path, hidLower } = this.prepareCreate(parent, name);
    libc.mknod(path, mode, rdev);
    return this.created(parent, name, hidLower);
  }

  mkdir(parentId: number, name: string, mode: number, _caller: Caller): Entry {
    const parent = this.directory(parentId);
    const { path, hidLower } = this.prepareCreate(parent, name);
    mkdirSync(bytes(path), { mode: mode & 0o7777 });
    // A directory made where a lower one was deleted must not show the old contents.
    if (hidLower) this.markOpaque(path);
    return this.created(parent, name, hidLower);
  }

  unlink(parentId: number, name: string): void {
    const parent = this.directory(parentId);
    const where = this.find(parent, name);
    if (!where) throw ENOENT;
    if (where.dirs) throw EISDIR;
    this.remove(parent, where);
  }

  rmdir(parentId: number, name: string): void {
    const parent = this.directory(parentId);
    const where = this.find(parent, name);
    if (!where) throw ENOENT;
    if (!where.dirs) throw ENOTDIR;
    if (this.merged(this.transient(parent, where)).length > 0) throw ENOTEMPTY;
    this.remove(parent, where);
  }

  private remove(parent: Node, where: Resolved): void {
    const relative = parent.parent ? `${this.path(parent)}/${where.real}` : where.real;
    if (where.branch === 0) {
      const path = bytes(this.full(0, relative));
      if (where.dirs) {
        // Only whiteouts and marks are left in it (the merged view is empty).
        for (const entry of readdirSync(path, { encoding: "buffer" }) as Buffer[]) unlinkSync(Buffer.concat([path, Buffer.from("/"), entry]));
        rmdirSync(path);
      } else unlinkSync(path);
    }
    if (where.branch !== 0 || where.inLower) this.whiteout(parent, where.real);
    this.detach(parent, where.real);
  }

  /** Nodes of a name that is gone from a directory are no longer found by name. */
  private detach(parent: Node, real: string): void {
    const slot = `${parent.place.key}/${real}`;
    for (const node of this.places.get(slot)?.users ?? []) {
      const key = `${parent.id}/${node.name}`;
      if (node.parent === parent && this.byName.get(key) === node) this.byName.delete(key);
    }
    this.places.delete(slot);
    parent.place.fold = undefined;
  }

  rename(parentId: number, name: string, newParentId: number, newName: string, flags: number): void {
    if (flags & RENAME_EXCHANGE) throw EINVAL;
    const parent = this.directory(parentId);
    const newParent = this.directory(newParentId);
    const source = this.find(parent, name);
    if (!source) throw ENOENT;
    const existing = this.find(newParent, newName);
    const sameEntry = existing !== undefined && newParent === parent && existing.real === source.real;
    if (existing && !sameEntry && flags & RENAME_NOREPLACE) throw EEXIST;
    // With casefold, a name that differs only in case from an existing one replaces that one,
    // unless it is the source itself (a case-only rename).
    const targetName = existing && !sameEntry ? existing.real : newName;
    if (sameEntry && targetName === source.real) return;
    if (existing && !sameEntry) {
      if (source.dirs && !existing.dirs) throw ENOTDIR;
      if (!source.dirs && existing.dirs) throw EISDIR;
      if (existing.dirs) {
        if (this.merged(this.transient(newParent, existing)).length > 0) throw ENOTEMPTY;
      }
    }
    // A directory that has lower parts would need all of them moved: the caller copies
    // (mv does on EXDEV), as with the kernel overlay.
    if (source.dirs && (source.branch !== 0 || source.inLower)) throw EXDEV;

    const known = this.byName.get(`${parent.id}/${name}`);
    const moving: Node = known ?? this.transient(parent, source);
    moving.real = source.real;
    if (known) this.use(known, this.place(parent, source, true));
    this.copyUp(moving);
    this.upperDir(newParent);
    const from = this.full(0, this.path(moving));
    const toRelative = newParent.parent ? `${this.path(newParent)}/${targetName}` : targetName;
    const to = this.full(0, toRelative);
    const targetInLower = existing ? existing.branch !== 0 || existing.inLower : false;
    const upperTarget = this.tryStat(to);
    if (existing && existing.branch === 0 && existing.dirs) {
      // The replaced directory may hold whiteouts: they go with it.
      for (const entry of readdirSync(bytes(to), { encoding: "buffer" }) as Buffer[]) unlinkSync(Buffer.concat([bytes(to), Buffer.from("/"), entry]));
    }
    if (upperTarget && isWhiteout(upperTarget)) unlinkSync(bytes(to));
    renameSync(bytes(from), bytes(to));
    if (source.dirs && (targetInLower || (upperTarget && isWhiteout(upperTarget)))) this.markOpaque(to);
    if (moving.place.inLower) this.whiteout(parent, source.real);

    this.detach(parent, source.real);
    if (!sameEntry) this.detach(newParent, targetName);
    moving.parent = newParent;
    moving.name = newName;
    moving.real = targetName;
    moving.place.inLower = targetInLower || (upperTarget !== undefined && isWhiteout(upperTarget));
    moving.place.branch = 0;
    if (known) this.places.set((known.place.slot = `${newParent.place.key}/${targetName}`), known.place);
    if (known) this.byName.set(`${newParent.id}/${newName}`, known);
    this.learned(newParent, targetName);
  }

  link(id: number, newParentId: number, newName: string): Entry {
    const node = this.node(id);
    if (node.place.dirs) throw EPERM;
    const newParent = this.directory(newParentId);
    this.copyUp(node);
    const { path, hidLower } = this.prepareCreate(newParent, newName);
    linkSync(bytes(this.full(0, this.path(node))), bytes(path));
    return this.created(newParent, newName, hidLower);
  }

  open(id: number, flags: number): number {
    const node = this.node(id);
    if ((flags & O_ACCMODE) !== 0 || flags & O_TRUNC) this.copyUp(node);
    const fd = openSync(bytes(this.full(node.place.branch, this.path(node))), flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
    return this.handle(fd, id);
  }

  create(parentId: number, name: string, mode: number, flags: number, _caller: Caller): { entry: Entry; fh: number } {
    const parent = this.directory(parentId);
    const twin = this.find(parent, name);
    if (twin) {
      // Another spelling of an existing name (casefold): open that one.
      if (flags & O_EXCL) throw EEXIST;
      const entry = this.lookup(parentId, name);
      return { entry, fh: this.open(entry.node, flags & ~O_CREAT) };
    }
    const { path, hidLower } = this.prepareCreate(parent, name);
    const fd = openSync(bytes(path), flags | O_CREAT | O_EXCL, mode & 0o7777);
    const entry = this.created(parent, name, hidLower);
    return { entry, fh: this.handle(fd, entry.node) };
  }

  private handle(fd: number, node: number): number {
    const fh = this.nextHandle++;
    this.files.set(fh, { fd, node });
    return fh;
  }

  private fd(fh: number): number {
    const open = this.files.get(fh);
    if (open === undefined) throw EBADF;
    return open.fd;
  }

  read(fh: number, offset: number, size: number, target: Buffer, at: number): number {
    return readSync(this.fd(fh), target, at, size, offset);
  }

  write(fh: number, offset: number, data: Buffer, at: number, size: number): number {
    return writeSync(this.fd(fh), data, at, size, offset);
  }

  release(fh: number): void {
    const open = this.files.get(fh);
    this.files.delete(fh);
    if (open !== undefined) closeSync(open.fd);
  }

  fsync(fh: number, dataOnly: boolean): void {
    if (dataOnly) fdatasyncSync(this.fd(fh));
    else fsyncSync(this.fd(fh));
  }

  fallocate(fh: number, mode: number, offset: number, length: number): void {
    libc.fallocate(this.fd(fh), mode, offset, length);
  }

  statfs(_id: number): libc.StatFs {
    return libc.statfs(this.roots[0]!);
  }

  setxattr(id: number, name: string, value: Buffer, flags: number): void {
    if (HIDDEN_XATTR.test(name)) throw EPERM;
    const node = this.node(id);
    this.copyUp(node);
    libc.setxattr(this.full(0, this.path(node)), name, value, flags);
  }

  getxattr(id: number, name: string, size: number): Buffer | number {
    if (HIDDEN_XATTR.test(name)) throw ENODATA;
    const node = this.node(id);
    return libc.getxattr(this.full(node.place.branch, this.path(node)), name, size);
  }

  listxattr(id: number, size: number): Buffer | number {
    const node = this.node(id);
    const all = libc.listxattr(this.full(node.place.branch, this.path(node)), 65536);
    const names = typeof all === "number" ? "" : all.toString("latin1");
    const shown = names
      .split("\0")
      .filter((name) => name && !HIDDEN_XATTR.test(name))
      .map((name) => `${name}\0`)
      .join("");
    return size === 0 ? shown.length : bytes(shown);
  }

  removexattr(id: number, name: string): void {
    if (HIDDEN_XATTR.test(name)) throw ENODATA;
    const node = this.node(id);
    this.copyUp(node);
    libc.removexattr(this.full(0, this.path(node)), name);
  }

  opendir(id: number): number {
    const dir = this.directory(id);
    const self = this.stat(this.full(dir.place.branch, this.path(dir)));
    const entries: DirEntry[] = [
      { name: ".", ino: self.ino, type: S_IFDIR >>> 12 },
      // glibc hides entries with inode 0; the parent's own number does not matter to anyone.
      { name: "..", ino: self.ino, type: S_IFDIR >>> 12 },
      ...this.merged(dir),
    ];
    const fh = this.nextHandle++;
    this.listings.set(fh, entries);
    return fh;
  }

  readdir(fh: number): DirEntry[] {
    const entries = this.listings.get(fh);
    if (!entries) throw EBADF;
    return entries;
  }

  releasedir(fh: number): void {
    this.listings.delete(fh);
  }
}
