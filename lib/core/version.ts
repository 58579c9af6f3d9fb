/** ctre's version, printed by `ctre --version`. */
export const VERSION = "0.1.0";
