// Splitting text at special token texts (see special_split.h).
#include "model/special_split.h"

namespace chorus {

std::vector<Fragment> split_special(std::string_view text, const std::vector<SpecialToken>& specials) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (const SpecialToken& sp : specials) {
    // Most specials never occur; skip the rebuild for them.
    if (sp.text.empty() || text.find(sp.text) == std::string_view::npos) continue;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view window = text.substr(0, f.end);
      size_t pos = f.begin;
      for (size_t m; (m = window.find(sp.text, pos)) != std::string_view::npos;) {
        if (m > pos) next.push_back({-1, pos, m});
        next.push_back({sp.id, m, m + sp.text.size()});
        pos = m + sp.text.size();
      }
      if (pos < f.end) next.push_back({-1, pos, f.end});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace chorus
