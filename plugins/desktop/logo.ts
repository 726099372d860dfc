// The FlatImage logo written for the generic MIME type (reference §13.3): our own drawing,
// three stacked layers in a rounded square, since an image is a stack of layers in one file.
export const LOGO_SVG = `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">
  <title>FlatImage</title>
  <rect x="4" y="4" width="120" height="120" rx="24" fill="#1d3557"/>
  <path d="M64 82 L104 64 L104 72 L64 90 L24 72 L24 64 Z" fill="#457b9d"/>
  <path d="M64 66 L104 48 L104 56 L64 74 L24 56 L24 48 Z" fill="#a8dadc"/>
  <path d="M64 26 L104 44 L64 62 L24 44 Z" fill="#f1faee"/>
  <path d="M64 98 L104 80 L104 88 L64 106 L24 88 L24 80 Z" fill="#e63946"/>
</svg>
`;
