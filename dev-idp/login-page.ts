/**
 * The two pages a browser sees: the login form and a plain message page. Self-contained (inline CSS, no
 * scripts, no external assets), and every value echoed back is HTML-escaped (html-escaper: & < > " ').
 */
import { escape as escapeHtml } from 'html-escaper';

/** Headers for every HTML page: no framing, no caching of credentials pages, nothing loaded from elsewhere. */
export const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Content-Security-Policy':
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

const STYLE = `
  body { font-family: system-ui, sans-serif; background: #f3f4f6; margin: 0; }
  main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: .5rem;
         box-shadow: 0 1px 3px rgba(0,0,0,.15); }
  h1 { font-size: 1.25rem; margin-top: 0; }
  label { display: block; margin: 1rem 0 .25rem; font-size: .9rem; }
  input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: .5rem; }
  button { margin-top: 1.5rem; width: 100%; padding: .6rem; }
  .error { color: #b91c1c; background: #fef2f2; padding: .5rem; border-radius: .25rem; }
  .note { color: #6b7280; font-size: .8rem; margin-top: 1.5rem; }`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body><main>
${body}
<p class="note">Development identity provider: a stand-in for Zitadel, never used in production.</p>
</main></body>
</html>
`;
}

export interface FormPageOptions {
  action: string;
  /**
   * The authorization request (and, on the TOTP step, the half-finished login: session id and token), carried
   * through the form unchanged and validated again on submit.
   */
  hidden: Record<string, string>;
  clientId: string;
  loginName: string;
  error?: string;
}

/** A page with a form posting to `action`; `title` and `intro` are HTML, so callers escape what they echo. */
function formPage(title: string, intro: string, options: FormPageOptions, fields: string, submit: string) {
  const hidden = Object.entries(options.hidden)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  const error = options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : '';
  return page(
    title,
    `<h1>${title}</h1>
<p>${intro}</p>
${error}
<form method="post" action="${escapeHtml(options.action)}">
${hidden}
${fields}
<button type="submit">${submit}</button>
</form>`,
  );
}

export function loginPage(options: FormPageOptions): string {
  const { loginName } = options;
  return formPage(
    'Sign in',
    `to continue to <strong>${escapeHtml(options.clientId)}</strong>`,
    options,
    `<label for="loginName">Login name</label>
<input type="text" id="loginName" name="loginName" value="${escapeHtml(loginName)}" autocomplete="username" required${loginName ? '' : ' autofocus'}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${loginName ? ' autofocus' : ''}>`,
    'Sign in',
  );
}

/** The second step for a user with a TOTP generator: the 6-digit code from the authenticator app. */
export function totpPage(options: FormPageOptions): string {
  return formPage(
    'Two-factor authentication',
    `Enter the code from your authenticator app for <strong>${escapeHtml(options.loginName)}</strong> to continue to <strong>${escapeHtml(options.clientId)}</strong>.`,
    options,
    `<label for="otp">Code</label>
<input type="text" id="otp" name="otp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus>`,
    'Verify',
  );
}

export function messagePage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}
