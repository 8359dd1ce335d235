/** Branded error pages (HTML) and JSON error bodies. */
export { errorResponse, renderErrorHtml, renderErrorJson } from "./error_page.ts";
export { prefersJson } from "./negotiate.ts";
