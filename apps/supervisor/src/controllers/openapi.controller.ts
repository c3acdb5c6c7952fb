import { Controller, Get, Header, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { z } from 'zod';
import { ApiRoute, named } from '../http/api-route.js';
import { DOCS_HTML, DOCS_INIT_JS, buildOpenApiDocument, collectApiRoutes } from '../http/openapi.js';
import { BUILD_STREAM_ROUTE, RUN_STREAM_ROUTE } from '../http/websocket.js';
import { AUTOPACK_VERSION } from '../version.js';

/** The outline of an OpenAPI 3.1 document (the document itself is generated, see `buildOpenApiDocument`). */
const OpenApiDocumentSchema = z.looseObject({
  openapi: z.string(),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
  components: z.looseObject({ schemas: z.record(z.string(), z.unknown()) }),
});

/** `GET /openapi.json` and `GET /docs`. */
@Controller()
export class OpenApiController implements OnModuleInit {
  private document: Record<string, unknown> = {};

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  /** Built once at boot from every registered route, so a route without schemas stops the boot. */
  onModuleInit(): void {
    this.document = buildOpenApiDocument(AUTOPACK_VERSION, collectApiRoutes(this.discovery, this.scanner, [RUN_STREAM_ROUTE, BUILD_STREAM_ROUTE]));
  }

  @Get('openapi.json')
  @ApiRoute({ tag: 'meta', summary: 'This document', response: named('OpenApiDocument', OpenApiDocumentSchema), errors: [401] })
  openapi() {
    return this.document;
  }

  @Get('docs')
  @Header('Content-Type', 'text/html; charset=utf-8')
  @ApiRoute({ tag: 'meta', summary: 'This document, rendered', contentType: 'text/html', response: z.string(), errors: [401] })
  docs(): string {
    return DOCS_HTML;
  }

  @Get('docs/init.js')
  @Header('Content-Type', 'application/javascript; charset=utf-8')
  @ApiRoute({ tag: 'meta', summary: 'The Swagger UI initializer of /docs', contentType: 'application/javascript', response: z.string(), errors: [401] })
  init(): string {
    return DOCS_INIT_JS;
  }
}
