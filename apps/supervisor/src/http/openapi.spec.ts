import { Controller, Get, Module, Post } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, MetadataScanner } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { z } from 'zod';
import { ApiRoute, named } from './api-route.js';
import { buildOpenApiDocument, collectApiRoutes } from './openapi.js';

describe(collectApiRoutes.name, () => {
  const discover = async (controller: new () => unknown) => {
    @Module({ imports: [DiscoveryModule], controllers: [controller] })
    class Probe {}
    const moduleRef = await Test.createTestingModule({ imports: [Probe] }).compile();
    try {
      return collectApiRoutes(moduleRef.get(DiscoveryService), moduleRef.get(MetadataScanner));
    } finally {
      await moduleRef.close();
    }
  };

  it('refuses a route handler registered without schemas, so the supervisor cannot boot with it', async () => {
    @Controller('things')
    class Undocumented {
      @Get(':thing_id')
      @ApiRoute({ tag: 'meta', summary: 'a documented one', params: z.object({ thing_id: z.string() }), response: z.string() })
      one() {
        return 'x';
      }

      @Post()
      two() {
        return 'y';
      }
    }
    await expect(discover(Undocumented)).rejects.toThrow(/Undocumented\.two \(POST \/things\): no @ApiRoute schemas/);
  });

  it('refuses path parameters the registered params do not describe', async () => {
    @Controller()
    class Mismatched {
      @Get('runs/:run_id')
      @ApiRoute({ tag: 'runs', summary: 'a run', response: named('X', z.object({})) })
      get() {
        return {};
      }
    }
    await expect(discover(Mismatched)).rejects.toThrow(/GET \/runs\/:run_id: path parameters \[run_id\] but params \[\]/);
  });

  it('reads the method and path from Nest and the schemas from the handler', async () => {
    @Controller('things')
    class Documented {
      @Get(':thing_id')
      @ApiRoute({ tag: 'meta', summary: 'one thing', params: z.object({ thing_id: z.string() }), response: z.string() })
      one() {
        return 'x';
      }
    }
    const routes = await discover(Documented);
    expect(routes.map((r) => [r.method, r.path, r.spec.summary])).toEqual([['get', '/things/:thing_id', 'one thing']]);
  });
});

describe(buildOpenApiDocument.name, () => {
  const Body = z.strictObject({ lease_token: z.string().optional(), note: z.string().optional(), kept: z.string().nullable().optional(), needed: z.string() });

  it('lets the optional fields of a null-as-absent body take null, except those where null is not absence', () => {
    const doc = buildOpenApiDocument('1', [
      { method: 'post', path: '/x/:x_id', spec: { tag: 'meta', summary: 's', params: z.object({ x_id: z.string() }), nullAsAbsent: true, body: named('XBody', Body), response: z.string() } },
    ]) as { components: { schemas: Record<string, { properties: Record<string, { anyOf?: unknown[] }> }> }; paths: Record<string, Record<string, { parameters: { name: string; in: string }[] }>> };
    const props = doc.components.schemas.XBody.properties;
    expect(props.note.anyOf).toEqual(expect.arrayContaining([{ type: 'null' }]));
    expect(props.lease_token.anyOf).toBeUndefined();
    expect(props.needed.anyOf).toBeUndefined();
    expect(doc.paths['/x/{x_id}'].post.parameters).toEqual([expect.objectContaining({ name: 'x_id', in: 'path' })]);
  });

  it('refuses two different schemas under one name', () => {
    const spec = (schema: z.ZodType) => ({ tag: 'meta' as const, summary: 's', response: named('Same', schema) });
    expect(() =>
      buildOpenApiDocument('1', [
        { method: 'get', path: '/a', spec: spec(z.object({ a: z.string() })) },
        { method: 'get', path: '/b', spec: spec(z.object({ b: z.string() })) },
      ]),
    ).toThrow(/two different schemas are named Same/);
  });
});
