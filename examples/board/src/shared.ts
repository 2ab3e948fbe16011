// What the page and the Durable Object agree on.
export interface Task {
  id: string
  title: string
  votes: number
  updated_at: number
}

export const TASK_COUNT = 5000

export function taskId(n: number): string {
  return `task-${String(n).padStart(5, '0')}`
}

/** The `vote` command's arguments: one vote, up or down. */
export interface VoteArgs {
  id: string
  delta: 1 | -1
}
