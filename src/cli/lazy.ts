// Commands load their implementation on use, so `--help` and every other command start fast
// and do not depend on it. A load that fails says which command, in one line (through guard()).

export async function loadCommand<M>(command: string, importer: () => Promise<M>): Promise<M> {
  try {
    return await importer();
  } catch (err) {
    throw new Error(`the ${command} command cannot be loaded: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
