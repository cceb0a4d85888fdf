/**
 * `vecron`: the server and its administration (the commands are in ./commands.ts).
 * Signal handlers go in first, before the commands' modules load (which takes a moment under tsx),
 * so a SIGTERM at any time of the start exits cleanly.
 */
import { installSignalHandlers } from './signals.ts';

installSignalHandlers();
await import('./commands.ts');
