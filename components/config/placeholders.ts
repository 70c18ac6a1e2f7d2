/**
 * Values copied from provider documentation that must never reach a real deployment: AWS's
 * example accounts, all-zero (or all-one) GUIDs, ids with EXAMPLE in them, template markers.
 * Pure: validation walks every plain config value and names the key holding one.
 */

/** First match wins: a zero GUID is reported as a GUID, not as the 12 zeros in it. */
const RULES: [RegExp, string][] = [
    [/(^|[^0-9a-f])([0-9a-f])\2{7}-\2{4}-\2{4}-\2{4}-\2{12}([^0-9a-f]|$)/i, "a placeholder GUID (all one digit)"],
    [/(^|\D)(111122223333|123456789012|444455556666|555555555555|000000000000)(\D|$)/, "an AWS documentation account id"],
    [/EXAMPLE/, "an EXAMPLE id from provider documentation"],
    [/<[^<>\s]+>|\bREPLACE[_-]?ME\b|\bCHANGE[_-]?ME\b/i, "a template marker"],
];

export interface Placeholder {
    /** The config key, e.g. `image.repository` or `databases[1].host`. */
    readonly key: string;
    readonly value: string;
    /** What kind of placeholder it is. */
    readonly what: string;
}

/** Every string under `values` that looks like a placeholder, with the key that holds it. */
export function findPlaceholders(values: unknown, key = ""): Placeholder[] {
    if (typeof values === "string") {
        const rule = RULES.find(([re]) => re.test(values));
        return rule ? [{ key, value: values, what: rule[1] }] : [];
    }
    if (Array.isArray(values)) {
        return values.flatMap((v, i) => findPlaceholders(v, `${key}[${i}]`));
    }
    if (typeof values === "object" && values !== null) {
        return Object.entries(values).flatMap(([k, v]) => findPlaceholders(v, key === "" ? k : `${key}.${k}`));
    }
    return [];
}
