// proxy-from-env 2.x ships no types; this is the one function we use.
declare module "proxy-from-env" {
  /**
   * The proxy URL for `url` from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY (lowercase first), or "" when
   * none applies (no variable, or NO_PROXY matches the host and port).
   */
  export function getProxyForUrl(url: string | URL): string;
}
