/**
 * Output of the job: JSON lines in a pod (one object per line, for log collectors), readable
 * text on a terminal. Every line passes through redaction, so a secret setting can never reach
 * a log, whatever an error message or a child process says.
 */
export type LogFormat = "json" | "text";

export class Logger {
    private secrets: string[] = [];
    private progressShown = false;

    constructor(
        readonly format: LogFormat,
        private readonly out: NodeJS.WritableStream = process.stderr,
        private readonly isTty = Boolean((out as NodeJS.WriteStream).isTTY),
    ) {}

    static resolve(setting: "auto" | "json" | "text", stream: NodeJS.WriteStream = process.stderr): Logger {
        const format = setting === "auto" ? (stream.isTTY ? "text" : "json") : setting;
        return new Logger(format, stream);
    }

    /** Values that must never be printed (passwords, connection strings, tokens). */
    addSecrets(values: readonly string[]): void {
        // As written, and as a JSON line writes it (a `"` or `\` in a password is escaped there).
        this.secrets.push(...values.filter((v) => v.length >= 3).flatMap((v) => [v, JSON.stringify(v).slice(1, -1)]));
        // Longest first, so a secret containing another is masked whole.
        this.secrets.sort((a, b) => b.length - a.length);
    }

    redact(text: string): string {
        let out = text;
        for (const s of this.secrets) {
            out = out.split(s).join("***");
        }
        // Credentials in URLs (postgres://user:pass@host), connection-string keys, and the
        // signing parts of pre-signed URLs (Azure SAS `sig=`, S3 `X-Amz-Signature=`).
        return withoutRowValues(out)
            .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]+:)[^@\s]+@/gi, "$1***@")
            .replace(/\b(AccountKey|SharedAccessSignature|password)=([^;\s]+)/gi, "$1=***")
            .replace(/([?&](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|token|access_token)=)[^&\s"]+/gi, "$1***");
    }

    info(msg: string, fields: Record<string, unknown> = {}): void {
        this.emit("info", msg, fields);
    }

    warn(msg: string, fields: Record<string, unknown> = {}): void {
        this.emit("warn", msg, fields);
    }

    error(msg: string, fields: Record<string, unknown> = {}): void {
        this.emit("error", msg, fields);
    }

    /** A progress update: one rewritten line on a terminal, a JSON line otherwise. */
    progress(msg: string, fields: Record<string, unknown> = {}): void {
        if (this.format === "text" && this.isTty) {
            this.out.write(`\r\x1b[2K${this.redact(msg)}`);
            this.progressShown = true;
            return;
        }
        this.emit("info", msg, { ...fields, event: "progress" });
    }

    private emit(level: string, msg: string, fields: Record<string, unknown>): void {
        if (this.progressShown) {
            this.out.write("\n");
            this.progressShown = false;
        }
        if (this.format === "json") {
            // Values are scrubbed before JSON escapes their quotes; secrets after (as written, or escaped).
            const clean = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === "string" ? withoutRowValues(v) : v]));
            const line = JSON.stringify({ time: new Date().toISOString(), level, msg: withoutRowValues(msg), ...clean });
            this.out.write(`${this.redact(line)}\n`);
        } else {
            const extra = Object.entries(fields)
                .filter(([, v]) => v !== undefined)
                .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
                .join(" ");
            const prefix = level === "info" ? "" : `${level}: `;
            this.out.write(`${this.redact(`${prefix}${msg}${extra ? `  ${extra}` : ""}`)}\n`);
        }
    }
}

/** A quoted value PostgreSQL puts in a message, up to a quote that ends it (a value may hold quotes). */
const QUOTED = String.raw`"[^\n]*?"(?=$|[\s.,;)])`;

/**
 * PostgreSQL's messages that carry a row's values, with the values left out: a restore that fails
 * on `invalid input syntax for type integer: "alice@example.com"` (a column changed since the
 * backup) must not send a customer's data to ntfy, a webhook or the log collector. Pure.
 */
export function withoutRowValues(text: string): string {
    return text
        .replace(new RegExp(String.raw`(invalid input (?:syntax|value) for (?:type|enum) [^:\n]+: )${QUOTED}`, "g"), '$1"…"')
        .replace(new RegExp(String.raw`(\b(?:value|input) )${QUOTED}( is out of range)`, "g"), '$1"…"$2')
        .replace(new RegExp(String.raw`((?:field value out of range|invalid value|invalid input string)[^:\n]*: )${QUOTED}`, "g"), '$1"…"')
        .replace(/(\bKey \([^)\n]*\)=)\(.*?\)(?=( already exists| is not present| conflicts|\.|$))/gm, "$1(…)")
        .replace(/(Failing row contains )\(.*\)/g, "$1(…)")
        .replace(new RegExp(String.raw`(\bCOPY [^,\n]+, line \d+, column [^:\n]+: )${QUOTED}`, "g"), '$1"…"');
}

export function formatBytes(n: number): string {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
    const s = ms / 1000;
    if (s < 60) {
        return `${s.toFixed(1)}s`;
    }
    const m = Math.floor(s / 60);
    return m < 60 ? `${m}m${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** The line of a child process's output worth reporting: the last error-like line, else the last line. */
export function failureLine(text: string): string {
    // Context a server error comes with (CONTEXT, DETAIL, HINT, the statement, a COPY's line, which
    // quotes a row of the table) is never the line to report: it can hold row data, and a table
    // named failed_jobs or a value saying "connection error" would otherwise stand in for the error.
    const lines = text.split("\n").map((l) => l.trim()).filter(Boolean)
        .filter((l) => !/^(CONTEXT|DETAIL|HINT|QUERY|STATEMENT|LINE \d+):|^(Command|Query) was:|^COPY .*, line \d+|^[\w.-]+: (detail|hint):/.test(l));
    // Lines that say they are an error (`pg_restore: error: …`, `ERROR:  …`, `tar: Error …`) first.
    const marked = lines.filter((l) => /^([\w.-]+: )?(error|fatal)\b/i.test(l));
    const errors = marked.length > 0 ? marked : lines.filter((l) => /error|fatal|failed|could not/i.test(l));
    // A parallel pg_dump or pg_restore ends with its leader's "a worker process died
    // unexpectedly", after the worker printed what went wrong: that is the line to report.
    const causes = errors.filter((l) => !/a worker process died unexpectedly/.test(l));
    return (causes.length > 0 ? causes : errors).at(-1) ?? lines.at(-1) ?? "";
}

/** A failure the job reports as one line, with the exit code a CronJob acts on. */
export class JobError extends Error {
    constructor(message: string, readonly exitCode = 1) {
        super(message);
    }
}
