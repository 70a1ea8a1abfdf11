import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Connection, type TokenResponse } from 'jsforce/lib/core.js';
import type { Config } from '../../config';
import { salesforceAuthMode, type SalesforceAuthMode } from '../../config';
import { SyncError } from '../../core/errors';
import type { Logger } from '../../log';
import { transportError } from '../engine/classify-errors';
import type { Deadline } from '../engine/deadline';

/**
 * The Salesforce session: a jsforce Connection (pinned at 3.10.16, see
 * NOTES.md) and the grant that opens it: a refresh token, a JWT bearer
 * assertion, client credentials, or a fixed access token. Client credentials
 * and JWT return no refresh token, so an expired session runs the grant again.
 */

const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export class SalesforceSession {
  readonly conn: Connection;
  readonly mode: SalesforceAuthMode;
  private readonly jwtKey: KeyObject | undefined;
  private granting: Promise<TokenResponse> | undefined;
  /** Why the last grant failed: reported instead of jsforce's "Unable to refresh session". */
  lastGrantError: SyncError | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    version: string,
  ) {
    const mode = salesforceAuthMode(config);
    if (mode === undefined) {
      throw new Error(
        'Salesforce needs credentials: SALESFORCE_CLIENT_ID + SALESFORCE_CLIENT_SECRET, a refresh token, a JWT key, or an instance URL + access token',
      );
    }
    this.mode = mode;
    this.jwtKey = mode === 'jwt' ? loadPrivateKey(config.SALESFORCE_PRIVATE_KEY) : undefined;

    const usesGrant = mode !== 'access-token';
    this.conn = new Connection({
      loginUrl: config.SALESFORCE_LOGIN_URL,
      version,
      ...(config.SALESFORCE_INSTANCE_URL !== undefined ? { instanceUrl: config.SALESFORCE_INSTANCE_URL } : {}),
      ...(mode === 'access-token' && config.SALESFORCE_ACCESS_TOKEN !== undefined
        ? { accessToken: config.SALESFORCE_ACCESS_TOKEN }
        : {}),
      // Client id only when we grant: with a client id and no refresh
      // function jsforce installs a refresh-token flow we cannot satisfy.
      oauth2: {
        loginUrl: config.SALESFORCE_LOGIN_URL,
        ...(usesGrant && config.SALESFORCE_CLIENT_ID !== undefined ? { clientId: config.SALESFORCE_CLIENT_ID } : {}),
        ...(usesGrant && config.SALESFORCE_CLIENT_SECRET !== undefined
          ? { clientSecret: config.SALESFORCE_CLIENT_SECRET }
          : {}),
      },
      // Client credentials and JWT grants return no refresh token: on an
      // expired session jsforce calls this, and we simply run the grant again.
      ...(usesGrant
        ? {
            refreshFn: (_conn, callback) => {
              this.grant().then(
                (token) => callback(null, token.access_token, token),
                (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
              );
            },
          }
        : {}),
    });
  }

  async ensureSession(deadline: Deadline): Promise<void> {
    if (this.mode === 'access-token' || this.conn.accessToken) return;
    await deadline.race(this.grant());
  }

  /** Runs the configured grant; concurrent callers share one token request. */
  private grant(): Promise<TokenResponse> {
    if (this.granting !== undefined) return this.granting;
    const granting = this.runGrant().finally(() => {
      this.granting = undefined;
    });
    this.granting = granting;
    return granting;
  }

  private async runGrant(): Promise<TokenResponse> {
    const oauth2 = this.conn.oauth2;
    let token: TokenResponse;
    try {
      if (this.mode === 'refresh-token') {
        token = await oauth2.refreshToken(this.config.SALESFORCE_REFRESH_TOKEN ?? '');
      } else if (this.mode === 'jwt') {
        const assertion = signJwt({
          clientId: this.config.SALESFORCE_CLIENT_ID ?? '',
          username: this.config.SALESFORCE_USERNAME ?? '',
          audience: jwtAudience(this.config.SALESFORCE_LOGIN_URL),
          key: this.jwtKey,
        });
        token = await oauth2.requestToken({ grant_type: JWT_GRANT, assertion });
      } else {
        token = await oauth2.requestToken({ grant_type: 'client_credentials' });
      }
    } catch (err) {
      const error = grantError(err, this.mode);
      this.lastGrantError = error;
      this.logger.warn({ authMode: this.mode, crmCode: error.crmCode, kind: error.kind }, 'Salesforce token request failed');
      throw error;
    }
    this.lastGrantError = undefined;
    this.conn.instanceUrl = token.instance_url || this.config.SALESFORCE_INSTANCE_URL || this.conn.instanceUrl;
    this.conn.accessToken = token.access_token;
    this.logger.info({ authMode: this.mode }, 'Salesforce session established');
    return token;
  }
}

function grantError(err: unknown, mode: SalesforceAuthMode): SyncError {
  if (err instanceof SyncError) return err;
  const name = err instanceof Error ? err.name : '';
  const message = err instanceof Error ? err.message : String(err);
  // jsforce names a token-endpoint refusal after its OAuth error
  // (invalid_grant, invalid_client...) or ERROR_HTTP_<status>.
  if (name.startsWith('invalid_') || name === 'unauthorized_client' || name === 'unsupported_grant_type' || name === 'inactive_user') {
    return new SyncError('auth', `Salesforce refused the ${mode} grant: ${name}: ${message}`, { crmCode: name });
  }
  const status = /^ERROR_HTTP_(\d+)$/.exec(name);
  if (status !== null && Number(status[1]) < 500) {
    return new SyncError('auth', `Salesforce token endpoint answered HTTP ${status[1]}`, {
      crmCode: name,
      httpStatus: Number(status[1]),
    });
  }
  return transportError(err, 'Salesforce');
}

function loadPrivateKey(value: string | undefined): KeyObject {
  if (value === undefined) throw new Error('SALESFORCE_PRIVATE_KEY is required for the JWT bearer flow');
  const pem = value.includes('-----BEGIN') ? value.replace(/\\n/g, '\n') : readFileSync(value, 'utf8');
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new Error(
      `SALESFORCE_PRIVATE_KEY is neither a PEM private key nor the path of one (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

/**
 * The JWT's audience is the login server, not the My Domain host the token is
 * requested from: login.salesforce.com for production, test.salesforce.com
 * for sandboxes. Anything else (a fake, a proxy) gets its own origin.
 */
export function jwtAudience(loginUrl: string): string {
  const url = new URL(loginUrl);
  const host = url.hostname;
  if (host === 'test.salesforce.com' || host.endsWith('.sandbox.my.salesforce.com')) return 'https://test.salesforce.com';
  if (host.endsWith('.salesforce.com')) return 'https://login.salesforce.com';
  return url.origin;
}

function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString('base64url');
}

function signJwt(options: { clientId: string; username: string; audience: string; key: KeyObject | undefined }): string {
  if (options.key === undefined) throw new SyncError('auth', 'no private key for the JWT bearer flow');
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  // Real time on purpose: Salesforce checks `exp` against its own clock.
  const claims = base64url(
    JSON.stringify({
      iss: options.clientId,
      sub: options.username,
      aud: options.audience,
      exp: Math.floor(Date.now() / 1000) + 180,
    }),
  );
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(options.key);
  return `${header}.${claims}.${base64url(signature)}`;
}
