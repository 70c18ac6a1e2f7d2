import { DumpFormat, DumpReader } from "./counts";
import { CustomDumpReader } from "./custom";
import { DirectoryDumpReader } from "./directory";
import { PlainDumpReader } from "./plain";

/** A reader for the stream kx-backup uploads in that format (directory: the tar of the dump directory). */
export function createDumpReader(format: DumpFormat): DumpReader {
    switch (format) {
        case "custom":
            return new CustomDumpReader();
        case "directory":
            return new DirectoryDumpReader();
        case "plain":
            return new PlainDumpReader();
    }
}
