/**
 * Reading pg_dump's output: row counts and the table of contents from the dump itself, as the job
 * streams it (no second read of any table), and the table of contents of a dump file on disk.
 */
export { DumpStreamCounter, DumpStreamError } from "./counter";
export type { RecompressSettings } from "./counter";
export type { DumpCounts, DumpFormat } from "./counts";
export { DumpFormatError, parseArchiveToc } from "./archive";
export type { ArchiveHeader, ArchiveEntry, ArchiveToc } from "./archive";
export { createDumpReader } from "./reader";
export { readDumpToc } from "./tocfile";
export type { DumpToc } from "./tocfile";
