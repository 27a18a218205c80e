// Kept in step with package.json by hand; SHOW VERSION and --version print it.
export const VERSION = '0.1.0';
