// What the shop sells.
export const ITEMS = ['Espresso beans, 1 kg', 'Pour-over kettle', 'Hand grinder'];
