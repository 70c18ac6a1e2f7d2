/**
 * One memory budget for the upload buffers of every target (BACKUP_MEMORY_BUDGET_MIB). S3 and
 * Azure uploads buffer whole parts/blocks (partedStream: each part is checksummed before it is
 * sent); a directory target buffers nothing worth counting. A target holding `chunk`-sized parts
 * with `c` in flight holds about chunk × (c + 1) (the ones in flight and the one filling) plus
 * its 1 MiB write buffer.
 *
 * Part sizes come first: they must grow with the database so the store's part limit is never
 * reached (S3: 10,000 parts, Azure: 50,000 blocks). Then every buffering target gets one part in
 * flight; then, round by round, one more each while the budget allows, up to its maximum: two in
 * flight is what keeps the dump flowing while a part is sent, so it comes before a third for
 * anyone. When even one part in flight each does not fit, the upload is refused before it
 * starts, with the budget it needs: better than a job killed for memory halfway through. Pure.
 */
import { chunkSize } from "./targets/target";

export interface ChunkLimits {
    maxParts: number;
    min: number;
    max: number;
}

export interface BufferedTarget {
    kind: string;
    limits: ChunkLimits;
    /** Parts in flight at most, budget permitting. */
    maxConcurrency: number;
}

export interface UploadPlan {
    chunkBytes: number;
    concurrency: number;
    /** What this plan holds at most. */
    bufferBytes: number;
}

const MIB = 1024 * 1024;
/** partedStream's write buffer (its highWaterMark). */
export const WRITE_BUFFER = MIB;

/** The budget does not hold the smallest plan: the message says what to set. */
export class BudgetError extends Error {}

const cost = (chunk: number, concurrency: number) => chunk * (concurrency + 1) + WRITE_BUFFER;

/** Plans every buffering target's uploads within `budgetBytes`. Throws BudgetError when the smallest plan does not fit. */
export function planUploads(budgetBytes: number, expectedBytes: number, targets: readonly BufferedTarget[]): Map<string, UploadPlan> {
    const chunks = targets.map((t) => chunkSize(expectedBytes, t.limits));
    const concurrency = targets.map(() => 1);
    let used = chunks.reduce((sum, c) => sum + cost(c, 1), 0);
    if (used > budgetBytes) {
        const need = Math.ceil(used / MIB);
        const parts = targets.map((t, i) => `${t.kind}: ${chunks[i] / MIB} MiB parts`).join(", ");
        throw new BudgetError(
            `uploading about ${(expectedBytes / 1024 ** 3).toFixed(1)} GiB needs ${parts} (the stores' part limits), ` +
                `${need} MiB of buffers with one part in flight each: more than BACKUP_MEMORY_BUDGET_MIB=${Math.floor(budgetBytes / MIB)}. ` +
                `Set BACKUP_MEMORY_BUDGET_MIB to at least ${need} (and the job's memory limit about 150 MiB above it)`,
        );
    }
    for (let grew = true; grew; ) {
        grew = false;
        targets.forEach((t, i) => {
            if (concurrency[i] < t.maxConcurrency && used + chunks[i] <= budgetBytes) {
                concurrency[i]++;
                used += chunks[i];
                grew = true;
            }
        });
    }
    return new Map(targets.map((t, i) => [t.kind, { chunkBytes: chunks[i], concurrency: concurrency[i], bufferBytes: cost(chunks[i], concurrency[i]) }]));
}

/** The budget the targets of one run share: each buffering target joins, then asks for its plan. */
export class UploadBudget {
    private readonly members: BufferedTarget[] = [];

    constructor(readonly bytes: number) {}

    join(t: BufferedTarget): void {
        this.members.push(t);
    }

    /** This target's plan for an upload of about `expectedBytes`, made with every member's. */
    plan(kind: string, expectedBytes: number): UploadPlan {
        return planUploads(this.bytes, expectedBytes, this.members).get(kind)!;
    }
}
