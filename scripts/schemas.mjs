// JSON Schemas generated from the TypeScript types, so a type and its schema never disagree:
// the allocator profile (docs/allocator-profile.schema.json, which `attach` and `doctor`
// validate profiles with) and the analysis result (docs/analysis-result.schema.json, the shape of
// `analyze --format json`). `npm run schemas` writes them; test/schemas.test.ts fails when the
// committed files are not what the types generate.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGenerator } from 'ts-json-schema-generator';

const root = new URL('..', import.meta.url).pathname;

export const SCHEMAS = [
  { file: 'docs/allocator-profile.schema.json', path: 'src/attach/profile.ts', type: 'AllocatorProfile' },
  { file: 'docs/analysis-result.schema.json', path: 'src/analyses/result.ts', type: 'AnalysisResult' },
];

/** The schema text the type generates (2-space JSON, a final newline). */
export function generate({ path, type }) {
  const schema = createGenerator({ path: join(root, path), type, tsconfig: join(root, 'tsconfig.json'), skipTypeCheck: true }).createSchema(type);
  return `${JSON.stringify(schema, null, 2)}\n`;
}

// `--check`: write nothing, exit 1 naming each committed schema that differs from its type's.
if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const s of SCHEMAS) {
    const text = generate(s);
    if (check) {
      if (!existsSync(join(root, s.file)) || readFileSync(join(root, s.file), 'utf8') !== text) {
        console.error(`${s.file} is not what ${s.type} (${s.path}) generates: run npm run schemas`);
        stale++;
      }
      continue;
    }
    writeFileSync(join(root, s.file), text);
    console.log(`wrote ${s.file} (${s.type} in ${s.path})`);
  }
  process.exitCode = stale ? 1 : 0;
}
