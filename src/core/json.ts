/** A plain JSON value: what we store in jsonb columns and show in the admin. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
