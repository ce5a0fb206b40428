#!/usr/bin/env node
// The CLI entry. The TypeScript sources are compiled to dist/ by `npm run build` (run by `npm ci`
// through the `prepare` script).
import "../dist/src/main.js";
