/** The server flags every registry command takes: the seed's --url and --token, and --server. */
import type { Command } from 'commander';

export const serverOptions = (c: Command): Command =>
  c
    .option('--url <url>', 'vecron API base URL (default $VECRON_URL or http://127.0.0.1:8080)')
    .option('--server <url>', 'the same as --url')
    .option('--token <token>', 'API token (default $VECRON_TOKEN)');
