// After tsc: copy the serving page's static files next to the compiled server, and make the CLI
// executable (npm links `bin` before `prepare` builds it, so it cannot set the mode itself).
import { chmodSync, cpSync } from 'node:fs';

cpSync('src/serve/page', 'dist/serve/page', { recursive: true });
chmodSync('dist/cli/main.js', 0o755);
