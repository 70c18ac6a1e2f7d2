/** The committed stack files as the pure validator sees them (no Pulumi). */
import { readFileSync } from "fs";
import { parse } from "yaml";
import { RawConfig, StackConfig, validateStackConfig } from "../../components/config";
import { ROOT, SITE_VALUES } from "./pulumiMocks";

const P = "krystalinex-backup:";

/** A stack file's config as RawConfig; `asCommitted` keeps the documentation placeholders. */
export function rawFrom(stackFile: string, stack: string, opts: { asCommitted?: boolean } = {}): RawConfig {
    let text = readFileSync(`${ROOT}/${stackFile}`, "utf8");
    if (!opts.asCommitted) {
        for (const [from, to] of Object.entries(SITE_VALUES)) {
            text = text.split(from).join(to);
        }
    }
    const doc = parse(text).config as Record<string, unknown>;
    const values = Object.fromEntries(
        Object.entries(doc).filter(([k]) => k.startsWith(P)).map(([k, v]) => [k.slice(P.length), v]),
    );
    return {
        stack,
        values,
        passwordsFor: (values.databases as { name: string }[]).map((d) => d.name),
        hasNtfyUrl: true,
        hasRegistryPassword: false,
        awsRegion: doc["aws:region"] as string | undefined,
    };
}

/** The validated config of a stack file, with a site's values for its placeholders. */
export function validatedFrom(stackFile: string, stack: string): StackConfig {
    return validateStackConfig(rawFrom(stackFile, stack));
}
