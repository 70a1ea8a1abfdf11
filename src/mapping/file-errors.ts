/** One problem in one mapping file, where a RevOps user can find it. */
export interface MappingFileError {
  /** The file as the loader was pointed at it (e.g. mappings/hcc.yaml). */
  file: string;
  /** 1-based; 0 when the problem is the file as a whole (e.g. it is missing). */
  line: number;
  /** 1-based; 0 with line 0. */
  column: number;
  message: string;
}

/** `file:line:col message`, one per line, in file and line order; no stack traces. */
export function formatMappingErrors(errors: readonly MappingFileError[]): string {
  return sortErrors(errors)
    .map((e) => (e.line > 0 ? `${e.file}:${e.line}:${e.column} ${e.message}` : `${e.file}: ${e.message}`))
    .join('\n');
}

export function sortErrors(errors: readonly MappingFileError[]): MappingFileError[] {
  return [...errors].sort((a, b) =>
    a.file === b.file ? a.line - b.line || a.column - b.column : a.file < b.file ? -1 : 1,
  );
}

/** The same problem reported twice (a condition compiled in two scopes, say) is shown once. */
export function dedupeErrors(errors: MappingFileError[]): MappingFileError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.file}:${e.line}:${e.column}:${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
