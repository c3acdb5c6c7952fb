import { Controller, Get, Header } from '@nestjs/common';
import { DOCS_HTML, DOCS_INIT_JS, buildOpenApiDocument } from '../http/openapi.js';
import { AUTOPACK_VERSION } from '../version.js';

/** `GET /openapi.json` and `GET /docs`. */
@Controller()
export class OpenApiController {
  private readonly document = buildOpenApiDocument(AUTOPACK_VERSION);

  @Get('openapi.json')
  openapi() {
    return this.document;
  }

  @Get('docs')
  @Header('Content-Type', 'text/html; charset=utf-8')
  docs(): string {
    return DOCS_HTML;
  }

  @Get('docs/init.js')
  @Header('Content-Type', 'application/javascript; charset=utf-8')
  init(): string {
    return DOCS_INIT_JS;
  }
}
