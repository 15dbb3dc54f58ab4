/**
 * Why a job waits for review beyond its grade, as the job's stage names it. The stage is English text for logs and
 * the API; the console, which shows it in the page's language, recognises the reason by this one spelling.
 */
export const sameShapeHold = (limit: number): string => `more than ${limit} jobs of this shape in 24 hours`;

/** Whether a stage says the job was held because too many jobs of its shape ran within a day. */
export const isSameShapeHold = (stage: string | null): boolean => stage !== null && /more than \d+ jobs of this shape in 24 hours/.test(stage);
