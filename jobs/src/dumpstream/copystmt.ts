/**
 * Where a COPY statement of pg_dump loads its rows: `COPY <qualified name> [(<columns>)] FROM
 * stdin`. Usually the table the data belongs to; with load-via-partition-root (which pg_dump
 * forces for a tree hash-partitioned on an enum column: pg_dump.c forcePartitionRootLoad) each
 * partition's data is loaded through the root of its tree, so on restore the rows land wherever
 * the new root routes them (an enum's hash differs between databases), not necessarily in the
 * partition they came from.
 */

/** Parses `COPY <qualified name> [(<columns>)] FROM stdin` into schema and name; undefined if it is not that. */
export function parseCopyTarget(stmt: string): { schema: string; name: string } | undefined {
    let i = 0;
    const s = stmt.trim();
    if (!s.startsWith("COPY ")) {
        return undefined;
    }
    i = 5;
    const ident = (): string | undefined => {
        if (s[i] === '"') {
            let out = "";
            i++;
            for (;;) {
                const q = s.indexOf('"', i);
                if (q < 0) {
                    return undefined;
                }
                out += s.slice(i, q);
                if (s[q + 1] === '"') {
                    out += '"';
                    i = q + 2;
                } else {
                    i = q + 1;
                    return out;
                }
            }
        }
        const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(s.slice(i));
        if (!m) {
            return undefined;
        }
        i += m[0].length;
        return m[0];
    };
    const first = ident();
    if (first === undefined) {
        return undefined;
    }
    let schema = "";
    let name = first;
    if (s[i] === ".") {
        i++;
        const second = ident();
        if (second === undefined) {
            return undefined;
        }
        schema = first;
        name = second;
    }
    const rest = s.slice(i);
    // The column list: identifiers (quoted ones may hold anything) separated by commas.
    const m = /^\s*(\((?:"(?:[^"]|"")*"|[^()"])*\)\s*)?FROM stdin$/.exec(rest);
    return m ? { schema, name } : undefined;
}
