import { z } from 'zod';

/**
 * Grades after GB/T 43697-2024 (core / important / general), with general data split L1–L4 as local practice
 * does. The order matters: a licence's maximum grade and a join's strictest policy compare by it.
 */
export const grades = ['L1', 'L2', 'L3', 'L4', 'important', 'core'] as const;
export type Grade = (typeof grades)[number];
export const gradeSchema = z.enum(grades);

export function gradeRank(grade: Grade): number {
  return grades.indexOf(grade) + 1;
}

export function strictestGrade(list: readonly Grade[]): Grade {
  return list.reduce((strictest, grade) => (gradeRank(grade) > gradeRank(strictest) ? grade : strictest), 'L1');
}
