import { readFileSync } from 'node:fs';
import fc from 'fast-check';

/**
 * Request arbitraries derived from openapi.json: a small JSON Schema → fast-check mapping for the subset
 * the document uses (type, enum, format uuid/email/date-time, min/maxLength, minimum/maximum, required,
 * nullable, items, $ref into components), and the deliberately invalid values mixed in with them.
 */
export interface Schema {
  $ref?: string;
  type?: string;
  enum?: unknown[];
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  required?: string[];
  nullable?: boolean;
  items?: Schema;
  properties?: Record<string, Schema>;
}

export interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema: Schema;
}

export interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  body?: Schema;
  /** `security: []` in the document: callable without a token. */
  public: boolean;
}

interface Document {
  paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: unknown; security?: [] }>>;
  components: { schemas: Record<string, Schema> };
}

export const document = JSON.parse(
  readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8'),
) as Document;

export function operations(): Operation[] {
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => {
      const content = (op.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)
        ?.content;
      return {
        method: method.toUpperCase(),
        path,
        parameters: op.parameters ?? [],
        body: content?.['application/json']?.schema,
        public: Array.isArray(op.security) && op.security.length === 0,
      };
    }),
  );
}

export function resolve(schema: Schema): Schema {
  if (!schema.$ref) return schema;
  const name = schema.$ref.replace('#/components/schemas/', '');
  const target = document.components.schemas[name];
  if (!target) throw new Error(`Unresolvable $ref ${schema.$ref}`);
  return resolve(target);
}

const unicode = fc.string({ unit: 'grapheme', maxLength: 40 });
/** Strings that have broken parsers, SQL, regexes and loggers before. */
const nasty = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  'https://example.test/\u0000.png',
  'null',
  'undefined',
  '-1',
  '1e309',
  'NaN',
  "'; DROP TABLE users; --",
  '%',
  '_',
  '\\',
  '../../etc/passwd',
  '%00',
  '\uFEFF',
  '\uD800',
  'ǅ̴̢͕ẑ̸̖a̶l̷g̴o',
  '👩‍👩‍👧‍👦',
  '<script>alert(1)</script>',
  'a'.repeat(300),
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '2026-02-30T25:61:00Z',
  '9999-12-31T23:59:59Z',
  '0000-01-01T00:00:00Z',
);
/** Sometimes huge: up to 64 KiB, well past any column or field limit but inside the body limit. */
const huge = fc.integer({ min: 1_000, max: 65_536 }).map((n) => 'x'.repeat(n));

export const anyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 3, arbitrary: nasty },
  { weight: 2, arbitrary: unicode },
  { weight: 1, arbitrary: huge },
);

/** Arrays and objects nested up to a few hundred levels: recursion in parsers, validators, transformers. */
export const deepNesting: fc.Arbitrary<unknown> = fc
  .tuple(fc.integer({ min: 2, max: 400 }), fc.boolean(), fc.jsonValue({ maxDepth: 1 }))
  .map(([depth, arrays, leaf]) => {
    let value: unknown = leaf;
    for (let i = 0; i < depth; i++) value = arrays ? [value] : { a: value };
    return value;
  });

/** Keys named like Object.prototype's members, which a plain-object lookup mistakes for declared fields. */
export const prototypeKeys = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  '__defineGetter__',
);

/** Objects with many keys: from a few dozen (inside every limit) to thousands (past the member limit). */
export const wideObject: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(fc.integer({ min: 20, max: 3_000 }), fc.constantFrom(0, '', null, [], {}))
  .map(([width, leaf]) => Object.fromEntries(Array.from({ length: width }, (_, i) => [`k${i}`, leaf])));

/** Nesting past the body's depth limit, up to the 2,000 levels that once answered 500. */
export const deeperNesting: fc.Arbitrary<unknown> = fc
  .tuple(fc.integer({ min: 30, max: 2_000 }), fc.boolean())
  .map(([depth, arrays]) => {
    let value: unknown = 1;
    for (let i = 0; i < depth; i++) value = arrays ? [value] : { a: value };
    return value;
  });

/** Any JSON value, often of the wrong type. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 2, arbitrary: anyString },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      null,
      true,
      false,
      0,
      -1,
      1.5,
      2 ** 31,
      Number.MAX_SAFE_INTEGER,
      -1e308,
      [],
      {},
    ),
  },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: wideObject },
  { weight: 1, arbitrary: deeperNesting },
);

/** Values the schema allows. */
export function valid(schemaOrRef: Schema): fc.Arbitrary<unknown> {
  const schema = resolve(schemaOrRef);
  const base = validNonNull(schema);
  return schema.nullable ? fc.oneof(base, fc.constant(null)) : base;
}

function validNonNull(schema: Schema): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  switch (schema.type ?? 'object') {
    case 'string':
      return validString(schema);
    case 'number':
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -1_000_000, max: schema.maximum ?? 1_000_000 });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(schema.items ? valid(schema.items) : fc.jsonValue(), { maxLength: 4 });
    case 'object':
    default: {
      const properties = schema.properties ?? {};
      if (!Object.keys(properties).length) return fc.dictionary(fc.string(), fc.jsonValue());
      const record = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, valid(v)]));
      return fc.record(record, { requiredKeys: schema.required ?? [] });
    }
  }
}

function validString(schema: Schema): fc.Arbitrary<string> {
  switch (schema.format ?? '') {
    case 'uuid':
      return fc.uuid();
    case 'email':
      return fc.emailAddress();
    case 'date-time':
      return fc
        .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
        .map((d) => d.toISOString());
    default:
      break;
  }
  return fc.string({
    unit: fc.oneof(
      fc.constantFrom('a', 'Z', '0', '.', '_', '-', '@', '!', '\u0000'),
      fc.string({ minLength: 1, maxLength: 1 }),
    ),
    minLength: schema.minLength ?? 0,
    maxLength: schema.maxLength ?? 40,
  });
}

/** Values the schema refuses, or at least values from outside the happy path. */
export function invalid(schemaOrRef: Schema): fc.Arbitrary<unknown> {
  const schema = resolve(schemaOrRef);
  if (schema.type === 'object' || schema.properties) {
    const properties = schema.properties ?? {};
    const names = Object.keys(properties);
    return fc.oneof(
      anyValue,
      // Each field valid, wrong or missing, plus unknown ones.
      fc
        .tuple(
          fc.record(Object.fromEntries(names.map((k) => [k, fc.oneof(valid(properties[k]), anyValue)])), {
            requiredKeys: [],
          }),
          fc.dictionary(fc.oneof(fc.string({ maxLength: 10 }), prototypeKeys), anyValue, {
            maxKeys: 3,
          }),
        )
        .map(([known, extra]) => ({ ...extra, ...known })),
      // All required fields null.
      fc.constant(Object.fromEntries((schema.required ?? names).map((k) => [k, null]))),
    );
  }
  return anyValue;
}

/**
 * Hostile bodies around a schema: a valid body plus prototype-named keys (each must be refused as an
 * unknown field, 422), or a wide or deep body (refused by the parser's limits).
 */
export function hostile(schemaOrRef: Schema): fc.Arbitrary<unknown> {
  const schema = resolve(schemaOrRef);
  const base = schema.type === 'object' || schema.properties ? valid(schema) : fc.constant({});
  return fc.oneof(
    fc
      .tuple(base, fc.dictionary(prototypeKeys, anyValue, { minKeys: 1, maxKeys: 3 }))
      .map(([known, extra]) => ({ ...(known as object), ...extra })),
    wideObject,
    deeperNesting,
  );
}

/** Mostly valid, sometimes not: each generated request exercises either the happy or an error path. */
export function mixed(schema: Schema): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 2, arbitrary: valid(schema) }, { weight: 2, arbitrary: invalid(schema) });
}

/** A query-string value: what the schema allows, as text, or anything else (several values: an array). */
export function queryValue(schema: Schema): fc.Arbitrary<string | string[]> {
  return fc.oneof(
    { weight: 3, arbitrary: valid(schema).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))) },
    { weight: 2, arbitrary: anyString },
    { weight: 1, arbitrary: fc.array(fc.string({ maxLength: 8 }), { minLength: 2, maxLength: 3 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '-1',
        '0',
        '1.5',
        '1e3',
        '101',
        '1000001',
        'abc',
        '',
        ' 1',
        '0x10',
        'Infinity',
      ),
    },
  );
}
