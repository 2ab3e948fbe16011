// What the page and the Durable Object agree on.
export interface Item {
  id: string
  category: string
  name: string
  price: number
  /** Who added it. The seeded catalog's own items have '' (nobody may delete them). */
  owner: string
  created_at: number
}

export const CATEGORIES = ['books', 'games', 'music', 'garden', 'kitchen', 'tools'] as const
export const ITEMS_PER_CATEGORY = 25
