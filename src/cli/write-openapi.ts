import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import { buildOpenApiDocument } from '../common/openapi/build-openapi-document.js';
import { serializeOpenApi } from '../common/openapi/openapi.js';

/** `npm run openapi`: writes the committed, key-sorted openapi.json at the repository root. */
const document = await buildOpenApiDocument();
await writeFile(new URL('../../../openapi.json', import.meta.url), serializeOpenApi(document));
console.log(`openapi.json: ${Object.keys(document.paths).length} paths`);
