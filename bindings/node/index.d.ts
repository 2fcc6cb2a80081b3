/** Anything with a synchronous loadExtension(): a better-sqlite3 Database or a node:sqlite DatabaseSync. */
export interface LoadableDatabase {
  loadExtension(path: string, entryPoint?: string): unknown;
}

/**
 * Loads wavesync into `db` (a better-sqlite3 `Database`, or a node:sqlite `DatabaseSync`
 * opened with `{ allowExtension: true }`) and returns it.
 */
export function load<T extends LoadableDatabase>(db: T): T;

/** Absolute path of the wavesync extension for this platform; throws if the package has none. */
export function getLoadablePath(): string;

/** Where the package keeps (or would keep) the library for a platform. */
export function libraryFile(platform?: string, arch?: string): string;

/** The extension's entry point, `sqlite3_wavesync_init`. */
export const ENTRY_POINT: string;
