import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { stepDefinitions, stepTypes } from '../../executors/definitions.ts';
import { canonicalJobJsonSchema } from '../../jobs/validate.ts';

/**
 * The JSON schemas the job validator checks with, for clients that build jobs (the dashboard's
 * builder draws one form per step type from them and checks input with them before saving).
 */
export async function jobSchemaRoutes(app: FastifyInstance, _ctx: ApiContext): Promise<void> {
  const answer = {
    job: canonicalJobJsonSchema,
    step_types: stepTypes.map((t) => ({ type: t, title: stepDefinitions[t].title, config_schema: stepDefinitions[t].configSchema })),
  };
  app.get(
    '/api/v1/schemas/job',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['jobs'],
        summary: "JSON schemas of the canonical job document and of each step type's config",
        description:
          'The schemas src/jobs/validate.ts compiles; semantic checks (cron syntax, templates, module references) come on top, so a save may still report problems.',
      },
    },
    async () => answer,
  );
}
