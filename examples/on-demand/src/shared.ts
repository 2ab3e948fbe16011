// What the page and the Durable Object agree on.
export interface Item {
  id: string
  category: string
  name: string
  price: number
  created_at: number
}

export const CATEGORIES = ['books', 'games', 'music', 'garden', 'kitchen', 'tools'] as const
export const ITEMS_PER_CATEGORY = 25
