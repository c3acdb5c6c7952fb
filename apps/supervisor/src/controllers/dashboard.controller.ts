import { Body, Controller, Delete, Get, Header, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DomainError } from '@app/contracts';
import { z } from 'zod';
import { SUPERVISOR_CONFIG, type SupervisorConfig } from '../config.js';
import { SESSION_COOKIE, apiKeyCheck, dashboardSessionToken } from '../http/api-key.js';
import { ApiRoute, type ApiRouteSpec, named } from '../http/api-route.js';
import { dashboardDir, dashboardHtml } from '../http/dashboard.js';
import { parseRouteBody } from '../http/validation.js';

/** `POST /dashboard/session` body: the API key, typed once into the dashboard's login form. */
const DashboardLoginSchema = z.strictObject({ key: z.string().min(1).max(4096) });

/** Whether the browser session may read the API (`authenticated`), and whether a key is needed at all. */
const DashboardSessionSchema = z.object({ key_required: z.boolean(), authenticated: z.boolean() });
type DashboardSession = z.infer<typeof DashboardSessionSchema>;

/** The schemas each route parses with and answers with (also its OpenAPI entry). */
const ROUTES = {
  page: {
    tag: 'meta',
    summary: 'The web dashboard (its shell and code are served without the key; every data call it makes needs it)',
    contentType: 'text/html',
    response: z.string(),
    auth: false,
  },
  session: { tag: 'meta', summary: 'Whether this browser has a dashboard session', response: named('DashboardSession', DashboardSessionSchema), auth: false },
  login: {
    tag: 'meta',
    summary: 'Trade the API key for an HttpOnly, SameSite=Strict session cookie (an HMAC of the key, never the key) accepted by every route',
    body: named('DashboardLogin', DashboardLoginSchema),
    response: named('DashboardSession', DashboardSessionSchema),
    errors: [401, 422, 429],
    auth: false,
  },
  logout: { tag: 'meta', summary: 'Clear the dashboard session cookie', response: named('DashboardSession', DashboardSessionSchema), auth: false },
} satisfies Record<string, ApiRouteSpec>;

/** `GET /dashboard` and its session routes (the assets under /dashboard/assets are static files, see bootstrap). */
@Controller()
export class DashboardController {
  private readonly html: string;
  private readonly keyMatches: ReturnType<typeof apiKeyCheck>;

  constructor(@Inject(SUPERVISOR_CONFIG) private readonly config: SupervisorConfig) {
    this.html = dashboardHtml(dashboardDir());
    this.keyMatches = apiKeyCheck(config.apiKey);
  }

  @Get('dashboard')
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  @ApiRoute(ROUTES.page)
  page(): string {
    return this.html;
  }

  @Get('dashboard/session')
  @Header('Cache-Control', 'no-store')
  @ApiRoute(ROUTES.session)
  session(@Req() req: Request): DashboardSession {
    return { key_required: !!this.keyMatches, authenticated: !this.keyMatches || this.keyMatches(req.headers) };
  }

  @Post('dashboard/session')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiRoute(ROUTES.login)
  login(@Body() body: unknown, @Req() req: Request, @Res({ passthrough: true }) res: Response): DashboardSession {
    const { key } = parseRouteBody(ROUTES.login, body);
    if (!this.config.apiKey || !this.keyMatches) return { key_required: false, authenticated: true };
    if (!this.keyMatches({ 'x-api-key': key })) throw new DomainError('UNAUTHORIZED', 'invalid API key');
    res.cookie(SESSION_COOKIE, dashboardSessionToken(this.config.apiKey), { httpOnly: true, sameSite: 'strict', path: '/', secure: req.secure });
    return { key_required: true, authenticated: true };
  }

  @Delete('dashboard/session')
  @Header('Cache-Control', 'no-store')
  @ApiRoute(ROUTES.logout)
  logout(@Req() req: Request, @Res({ passthrough: true }) res: Response): DashboardSession {
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/', secure: req.secure });
    return { key_required: !!this.keyMatches, authenticated: !this.keyMatches };
  }
}
