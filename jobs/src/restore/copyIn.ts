/**
 * `COPY ... FROM STDIN` through node-postgres: a query object the client runs like any other
 * (its "submittable" interface), that sends the data we give it as CopyData messages. This is
 * what lets a plain-format backup be restored without psql, so nothing in it can be run as a
 * psql meta-command.
 */
import { once } from "events";
import { Client } from "pg";

/** The part of node-postgres' connection a COPY uses (see pg/lib/connection.js). */
interface CopyConnection {
    query(text: string): void;
    sendCopyFromChunk(chunk: Buffer): void;
    endCopyFrom(): void;
    sendCopyFail(message: string): void;
    stream: NodeJS.WritableStream & { writableNeedDrain?: boolean };
}

export class CopyIn {
    /** Rows the server reported (`COPY n`). */
    rows = 0;
    private connection: CopyConnection | undefined;
    private ended = false;
    private failure: Error | undefined;
    private readonly started: Promise<void>;
    private readonly done: Promise<void>;
    private resolveStarted!: () => void;
    private resolveDone!: () => void;
    private rejectBoth!: (e: Error) => void;

    constructor(private readonly text: string) {
        let rejectStarted!: (e: Error) => void;
        let rejectDone!: (e: Error) => void;
        this.started = new Promise((resolve, reject) => {
            this.resolveStarted = resolve;
            rejectStarted = reject;
        });
        this.done = new Promise((resolve, reject) => {
            this.resolveDone = resolve;
            rejectDone = reject;
        });
        this.started.catch(() => undefined);
        this.done.catch(() => undefined);
        this.rejectBoth = (e) => {
            rejectStarted(e);
            rejectDone(e);
        };
    }

    /** Runs the COPY statement on the client; resolves once the server waits for data. */
    static async begin(client: Client, text: string): Promise<CopyIn> {
        const copy = new CopyIn(text);
        (client as unknown as { query(q: unknown): unknown }).query(copy);
        await copy.started;
        return copy;
    }

    /** Sends data, waiting while the socket is full. */
    async write(chunk: Buffer): Promise<void> {
        if (this.failure) {
            throw this.failure;
        }
        const c = this.connection!;
        c.sendCopyFromChunk(chunk);
        if (c.stream.writableNeedDrain) {
            await Promise.race([once(c.stream, "drain"), this.done]);
        }
    }

    /** Ends the data; resolves when the server has committed the COPY. */
    async end(): Promise<number> {
        if (!this.ended && !this.failure) {
            this.ended = true;
            this.connection!.endCopyFrom();
        }
        await this.done;
        return this.rows;
    }

    /** Aborts the COPY (the server rolls it back); safe to call more than once. */
    async abort(reason: string): Promise<void> {
        if (!this.ended && this.connection) {
            this.ended = true;
            this.connection.sendCopyFail(reason);
        }
        await this.done.catch(() => undefined);
    }

    // ---- The submittable interface node-postgres calls. ----
    submit(connection: CopyConnection): void {
        connection.query(this.text);
    }

    handleCopyInResponse(connection: CopyConnection): void {
        this.connection = connection;
        this.resolveStarted();
    }

    handleCommandComplete(msg: { text?: string }): void {
        this.rows = Number(/^COPY (\d+)/.exec(msg.text ?? "")?.[1] ?? 0);
    }

    handleReadyForQuery(): void {
        if (this.failure) {
            this.rejectBoth(this.failure);
        } else if (!this.connection) {
            this.rejectBoth(new Error("the statement did not start a COPY FROM STDIN"));
        } else {
            this.resolveDone();
        }
    }

    handleError(err: Error, connection: CopyConnection): void {
        this.failure = err;
        // The server ignores data after an error until the copy is ended; end it so it answers.
        if (this.connection && !this.ended) {
            this.ended = true;
            connection.sendCopyFail("aborted");
        }
        this.rejectBoth(err);
    }

    handleRowDescription(): void {}
    handleDataRow(): void {}
    handleEmptyQuery(): void {}
    handlePortalSuspended(): void {}
    handleCopyData(): void {}
}
